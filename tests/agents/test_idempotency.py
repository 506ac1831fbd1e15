"""``Idempotency-Key`` on reports: a repeat changes nothing, a reused key with another body
is 422, and a duplicate racing the original is 409, never a second write."""

import threading

import pytest
from django.db import close_old_connections, connection, transaction

from agents.models import AgentRun, IdempotencyRecord, LogLine, MetricPoint
from realtime.models import Event
from tests import services
from tests.agents.conftest import Agent
from tests.factories import agent_client, make_user, started_experiment


def event_count(agent) -> int:
    return Event.objects.filter(run_id=agent.id).count()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("progress", {"progress_percent": 30, "metrics": {"tokens_used": 10}}),
        ("metrics", {"points": [{"name": "loss", "value": 1.0}, {"name": "loss", "value": 0.5}]}),
        ("logs", {"lines": [{"level": "info", "message": "once"}]}),
        ("plan", {"plan": {"steps": [1, 2]}}),
        ("validation", {"passed": True}),
        ("complete", {"result": 1}),
        ("fail", {"error": "once"}),
    ],
)
def test_a_repeat_with_the_same_key_and_body_returns_the_first_response_and_changes_nothing(agent, kind, body):
    first = agent.post(kind, body, HTTP_IDEMPOTENCY_KEY="key-1")
    assert first.status_code == 200
    events, points, lines = event_count(agent), MetricPoint.objects.count(), LogLine.objects.count()
    updated_at = agent.fresh().updated_at

    again = agent.post(kind, body, HTTP_IDEMPOTENCY_KEY="key-1")

    assert again.status_code == 200
    assert again.json() == first.json()
    assert event_count(agent) == events
    assert MetricPoint.objects.count() == points
    assert LogLine.objects.count() == lines
    assert agent.fresh().updated_at == updated_at


@pytest.mark.django_db
def test_a_repeat_returns_the_first_response_even_after_later_changes(agent):
    first = agent.post("progress", {"progress_percent": 10}, HTTP_IDEMPOTENCY_KEY="a")
    agent.post("progress", {"progress_percent": 90}, HTTP_IDEMPOTENCY_KEY="b")

    again = agent.post("progress", {"progress_percent": 10}, HTTP_IDEMPOTENCY_KEY="a")

    assert again.json() == first.json()
    assert again.json()["progress_percent"] == 10
    assert agent.fresh().progress_percent == 90


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422_and_changes_nothing(agent):
    agent.post("progress", {"progress_percent": 10}, HTTP_IDEMPOTENCY_KEY="k")
    events = event_count(agent)

    response = agent.post("progress", {"progress_percent": 11}, HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 422
    assert response.json()["error"] == "unprocessable"
    assert response.json()["detail"]
    assert agent.fresh().progress_percent == 10
    assert event_count(agent) == events


@pytest.mark.django_db
def test_the_same_key_on_another_kind_of_report_is_422(agent):
    agent.post("validation", {"passed": True}, HTTP_IDEMPOTENCY_KEY="k")

    assert agent.post("fail", {"error": "x"}, HTTP_IDEMPOTENCY_KEY="k").status_code == 422
    assert agent.fresh().status == "running"


@pytest.mark.django_db
def test_keys_belong_to_one_run(agent, other_agent):
    agent.post("progress", {"progress_percent": 10}, HTTP_IDEMPOTENCY_KEY="shared")

    response = other_agent.post("progress", {"progress_percent": 10}, HTTP_IDEMPOTENCY_KEY="shared")

    assert response.status_code == 200
    assert other_agent.fresh().progress_percent == 10


@pytest.mark.django_db
def test_a_refused_report_is_replayed_as_refused(agent):
    first = agent.post("progress", {"progress_percent": 150}, HTTP_IDEMPOTENCY_KEY="bad")

    again = agent.post("progress", {"progress_percent": 150}, HTTP_IDEMPOTENCY_KEY="bad")

    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["x" * 201, "   ", "bad\nkey"])
def test_an_unusable_key_is_400(agent, key):
    response = agent.client.post(
        f"/api/research/agents/{agent.id}/progress",
        {"progress_percent": 1},
        format="json",
        headers={"Idempotency-Key": key},
    )

    assert response.status_code == 400
    assert agent.fresh().status == "starting"


@pytest.mark.django_db
def test_without_a_key_every_report_counts(agent):
    body = {"points": [{"name": "loss", "value": 1.0}]}

    agent.post("metrics", body)
    agent.post("metrics", body)

    assert MetricPoint.objects.filter(series__run=agent.run).count() == 2


@pytest.mark.django_db
def test_a_duplicate_while_the_first_is_in_flight_is_409(agent):
    """The first request's claim is committed before it runs; a duplicate that sees it
    before it is done is told to retry instead of writing."""
    IdempotencyRecord.objects.create(run=agent.run, key="busy", request_hash="whatever")
    from agents.idempotency import request_hash

    IdempotencyRecord.objects.filter(key="busy").update(
        request_hash=request_hash("metrics", {"points": [{"name": "loss", "value": 1.0}]})
    )

    response = agent.post("metrics", {"points": [{"name": "loss", "value": 1.0}]}, HTTP_IDEMPOTENCY_KEY="busy")

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert response.json()["in_flight"] is True  # "retry", unlike a run that is over
    assert MetricPoint.objects.count() == 0


# Real concurrency: PostgreSQL, threads, row locks ---------------------------------------


def _post_in_thread(token: str, run_id: str, kind: str, body, key: str, results: list, index: int):
    try:
        response = agent_client(token).post(
            f"/api/research/agents/{run_id}/{kind}", body, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        results[index] = response.status_code
    finally:
        connection.close()


@pytest.fixture
def pg_agent(transactional_db):
    services.require_test_database_on_postgres()
    owner = make_user("pg-owner")
    _experiment, issued = started_experiment(owner, agents=1)
    return Agent(run=issued[0].run, token=issued[0].token)


@pytest.mark.postgres
def test_a_duplicate_racing_a_first_that_holds_the_run_is_409_and_never_writes_twice(pg_agent):
    """The first request is held inside its report (we hold the run's row lock); a
    duplicate arriving then gets 409; once the first finishes, a retry gets its answer."""
    body = {"points": [{"name": "loss", "value": float(i)} for i in range(100)]}
    results = [None, None]
    with transaction.atomic():
        # FOR NO KEY UPDATE: the report's own FOR UPDATE waits for it, but the key's
        # claim (a row referencing the run, which takes FOR KEY SHARE) does not.
        AgentRun.objects.select_for_update(no_key=True).get(pk=pg_agent.run.pk)
        first = threading.Thread(
            target=_post_in_thread, args=(pg_agent.token, pg_agent.id, "metrics", body, "dup", results, 0)
        )
        first.start()
        # The first request has claimed its key (committed) and now waits for the run lock.
        deadline = threading.Event()
        for _ in range(500):
            if IdempotencyRecord.objects.filter(key="dup").exists():
                break
            deadline.wait(0.01)
        else:
            pytest.fail("the first request never claimed its key")
        second = threading.Thread(
            target=_post_in_thread, args=(pg_agent.token, pg_agent.id, "metrics", body, "dup", results, 1)
        )
        second.start()
        second.join(10)
        assert results[1] == 409
        assert first.is_alive()
    first.join(10)
    assert results[0] == 200
    retry = pg_agent.post("metrics", body, HTTP_IDEMPOTENCY_KEY="dup")
    assert retry.status_code == 200
    assert retry.json() == {"accepted": 100}
    assert MetricPoint.objects.filter(series__run=pg_agent.run).count() == 100
    assert Event.objects.filter(run_id=pg_agent.id, event_type="metrics_updated").count() == 1


@pytest.mark.postgres
def test_simultaneous_duplicates_write_once(pg_agent):
    """Eight copies of one report released at the same instant: one write, every answer
    is either the first response or 409."""
    rounds, copies = 5, 8
    for round_number in range(rounds):
        body = {"points": [{"name": "loss", "value": float(round_number)}]}
        key = f"race-{round_number}"
        results: list = [None] * copies
        barrier = threading.Barrier(copies)

        def worker(index, body=body, key=key, results=results, barrier=barrier):
            close_old_connections()
            barrier.wait()
            _post_in_thread(pg_agent.token, pg_agent.id, "metrics", body, key, results, index)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert set(results) <= {200, 409}, results
        assert 200 in results
    assert MetricPoint.objects.filter(series__run=pg_agent.run).count() == rounds
    assert Event.objects.filter(run_id=pg_agent.id, event_type="metrics_updated").count() == rounds


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_request_is_taken_over_and_the_report_runs_once(agent):
    """A process died after claiming the key and before answering (its report, in the same
    transaction as the answer, never committed): after STALE_SECONDS the retry runs it."""
    from datetime import timedelta

    from django.utils import timezone

    from agents.idempotency import STALE_SECONDS, request_hash

    body = {"points": [{"name": "loss", "value": 1.0}]}
    IdempotencyRecord.objects.create(
        run=agent.run,
        key="orphan",
        request_hash=request_hash("metrics", body),
        created_at=timezone.now() - timedelta(seconds=STALE_SECONDS + 1),
    )

    first = agent.post("metrics", body, HTTP_IDEMPOTENCY_KEY="orphan")
    again = agent.post("metrics", body, HTTP_IDEMPOTENCY_KEY="orphan")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"accepted": 1}
    assert MetricPoint.objects.filter(series__run=agent.run).count() == 1


class _RunLock:
    """Hold a run's row (FOR NO KEY UPDATE) from a thread of its own, so that reports on it
    wait while this test's own statements still commit one by one."""

    def __init__(self, run_pk: int):
        self.run_pk = run_pk
        self.held = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self):
        try:
            with transaction.atomic():
                AgentRun.objects.select_for_update(no_key=True).get(pk=self.run_pk)
                self.held.set()
                self.release.wait(30)
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(30)


def _wait_until(condition, what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        threading.Event().wait(0.01)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.postgres
def test_a_slow_first_request_and_the_retry_that_took_its_claim_write_once(pg_agent):
    """The first request is held (the run is locked); its claim ages past STALE_SECONDS and a
    retry takes it over and is held too. When both go on, only the retry (which owns the
    claim now) can store its answer: the original's report rolls back, answering what the
    retry stored or, if the retry has not finished yet, 409 "in flight, retry"."""
    from datetime import timedelta

    from django.utils import timezone

    from agents.idempotency import STALE_SECONDS

    body = {"points": [{"name": "loss", "value": float(i)} for i in range(10)]}
    results = [None, None]

    def post(index):
        thread = threading.Thread(
            target=_post_in_thread, args=(pg_agent.token, pg_agent.id, "metrics", body, "slow", results, index)
        )
        thread.start()
        return thread

    with _RunLock(pg_agent.run.pk):
        first = post(0)
        _wait_until(lambda: IdempotencyRecord.objects.filter(key="slow").exists(), "the first claim")
        aged = timezone.now() - timedelta(seconds=STALE_SECONDS + 1)
        IdempotencyRecord.objects.filter(key="slow").update(created_at=aged)
        retry = post(1)
        _wait_until(lambda: IdempotencyRecord.objects.filter(key="slow", created_at__gt=aged).exists(), "the takeover")
        assert first.is_alive() and retry.is_alive()
    first.join(30)
    retry.join(30)

    assert results[1] == 200
    assert results[0] in (200, 409)
    assert MetricPoint.objects.filter(series__run=pg_agent.run).count() == 10
    assert Event.objects.filter(run_id=pg_agent.id, event_type="metrics_updated").count() == 1
