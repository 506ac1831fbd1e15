"""On PostgreSQL: many writers to one experiment at once.

Their events stay numbered 1..n in commit order with no hole and no duplicate, and no
two transitions deadlock. SQLite serialises every writer, so these need the real server:
``make test`` runs them when PostgreSQL answers (``-m postgres``).
"""

import threading

import pytest
from django.db import connection, transaction

from agents import reporting
from agents.models import AgentRun
from experiments import lifecycle
from experiments.errors import ConflictError
from experiments.models import Experiment
from realtime.store import record_event
from tests.experiments.recorded import events_of
from tests.factories import make_experiment, make_running, started_experiment
from tests.services import require_test_database_on_postgres

THREADS = 8
CHANGES_PER_THREAD = 200

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_at_once(functions) -> list[Exception]:
    """Run each function in its own thread (and connection), all released together."""
    barrier = threading.Barrier(len(functions))
    errors: list[Exception] = []

    def call(function):
        try:
            barrier.wait()
            function()
        except Exception as exc:  # reported to the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_changes_to_one_experiment_are_numbered_without_hole_or_duplicate(alice):
    require_test_database_on_postgres()
    experiment, issued = started_experiment(alice, agents=THREADS)

    def changes(index: int):
        """Even threads report progress on their own run; odd ones rename the experiment."""
        run = AgentRun(pk=issued[index].run.pk)
        for i in range(CHANGES_PER_THREAD):
            if index % 2 == 0:
                reporting.record_progress(run=run, progress_percent=i / 2)
            else:
                lifecycle.update_experiment(experiment=Experiment(pk=experiment.pk), by=alice, name=f"t{index}-{i}")

    assert run_at_once([lambda i=i: changes(i) for i in range(THREADS)]) == []

    events = events_of(experiment)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    made = [e for e in events if e.event_type in ("agent_progress", "experiment_updated")]
    assert len(made) == THREADS * CHANGES_PER_THREAD
    # Besides the changes: created, started, and each reporting run's agent_initialized.
    assert len(events) == THREADS * CHANGES_PER_THREAD + 2 + THREADS // 2
    # Seq order is commit order: each thread's changes appear in the order it made them.
    for index in range(0, THREADS, 2):
        run_id = issued[index].run.public_id
        assert [e.data["progress_percent"] for e in made if e.run_id == run_id] == [
            i / 2 for i in range(CHANGES_PER_THREAD)
        ]
    for index in range(1, THREADS, 2):
        prefix = f"t{index}-"
        assert [e.data["name"] for e in made if e.data.get("name", "").startswith(prefix)] == [
            f"{prefix}{i}" for i in range(CHANGES_PER_THREAD)
        ]


def test_concurrent_writers_of_the_event_store_alone_get_consecutive_seqs(alice):
    """No domain lock in front: only the event store's own row lock orders them."""
    require_test_database_on_postgres()
    experiment, _ = make_experiment(alice, agents=0)

    def writer(index: int):
        for i in range(CHANGES_PER_THREAD):
            with transaction.atomic():
                record_event(
                    event_type="log_appended",
                    experiment_id=experiment.public_id,
                    data={"writer": index, "i": i},
                )

    assert run_at_once([lambda i=i: writer(i) for i in range(THREADS)]) == []
    events = events_of(experiment)
    assert [e.seq for e in events] == list(range(1, THREADS * CHANGES_PER_THREAD + 2))
    for index in range(THREADS):
        mine = [e.data["i"] for e in events if e.data.get("writer") == index]
        assert mine == list(range(CHANGES_PER_THREAD))
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_concurrent_reports_and_a_stop_never_deadlock(alice):
    """A report locks its run, a stop its experiment then the runs: one order for both."""
    require_test_database_on_postgres()
    for _ in range(5):
        experiment, issued = started_experiment(alice, agents=6)
        runs = [make_running(item.run) for item in issued]
        stop = [lambda e=experiment: lifecycle.stop_experiment(experiment=e, by=alice)]
        reports = [lambda r=r: reporting.complete(run=AgentRun(pk=r.pk)) for r in runs]
        errors = run_at_once(stop + reports)
        # Whoever loses a race is refused with a conflict, never aborted as a deadlock.
        assert [e for e in errors if not isinstance(e, ConflictError)] == []
        experiment.refresh_from_db()
        assert experiment.is_finished
        seqs = [e.seq for e in events_of(experiment)]
        assert seqs == list(range(1, len(seqs) + 1))
