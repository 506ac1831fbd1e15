"""The exact events each transition records, numbered 1..n per experiment."""

from agents import lifecycle as run_lifecycle
from agents import reporting
from agents.models import RunStatus
from experiments import lifecycle, membership
from experiments.models import ExperimentStatus, Role
from tests.experiments.recorded import event_types, events_of
from tests.factories import experiment_in_status, make_experiment, make_running, run_in_status


def test_create_records_experiment_created_with_its_body(alice):
    experiment, issued = make_experiment(alice, config={"seed": 1})
    [event] = events_of(experiment)
    assert (event.event_type, event.seq, event.run_id) == ("experiment_created", 1, None)
    assert event.data["id"] == experiment.public_id
    assert event.data["status"] == "created"
    assert event.data["config"] == {"seed": 1}
    assert [r["id"] for r in event.data["runs"]] == [i.run.public_id for i in issued]
    assert all("token" not in r for r in event.data["runs"])


def test_start_records_one_experiment_started_with_name_total_agents_and_config(alice):
    experiment, issued = make_experiment(alice, name="Race", agents=3, config={"seed": 1})
    lifecycle.start_experiment(experiment=experiment, by=alice)
    events = events_of(experiment)
    assert [(e.event_type, e.seq) for e in events] == [("experiment_created", 1), ("experiment_started", 2)]
    data = events[1].data
    assert data["name"] == "Race"
    assert data["total_agents"] == 3
    assert data["config"] == {"seed": 1}
    assert data["status"] == "running"
    assert data["runs"] == [{"run_id": i.run.public_id, "status": "starting"} for i in issued]


def test_update_records_one_experiment_updated_with_only_the_changed_fields(alice):
    experiment, _ = make_experiment(alice, name="Old")
    lifecycle.update_experiment(experiment=experiment, by=alice, name="New", description="", config={"x": 1})
    events = events_of(experiment)
    assert [(e.event_type, e.seq) for e in events] == [("experiment_created", 1), ("experiment_updated", 2)]
    assert events[1].data == {"name": "New", "config": {"x": 1}}


def test_stop_records_agent_stopped_per_unfinished_run_then_experiment_stopped(alice):
    experiment, issued = experiment_in_status(alice, ExperimentStatus.RUNNING, agents=3)
    reporting.complete(run=make_running(issued[0].run))
    seq_before = events_of(experiment)[-1].seq
    lifecycle.stop_experiment(experiment=experiment, by=alice)
    new = [e for e in events_of(experiment) if e.seq > seq_before]
    assert [(e.event_type, e.run_id) for e in new] == [
        ("agent_stopped", issued[1].run.public_id),
        ("agent_stopped", issued[2].run.public_id),
        ("experiment_stopped", None),
    ]
    assert [e.seq for e in new] == [seq_before + 1, seq_before + 2, seq_before + 3]
    assert all(e.data["reason"] == "experiment_stopped" for e in new[:2])
    assert new[2].data["status"] == "stopped"
    assert new[2].data["by"] == "alice"


def test_a_whole_experiment_is_numbered_1_to_n_in_order(alice):
    experiment, issued = make_experiment(alice, agents=2)
    first, second = issued[0].run, issued[1].run
    lifecycle.update_experiment(experiment=experiment, by=alice, description="about")
    lifecycle.start_experiment(experiment=experiment, by=alice)
    first = reporting.record_progress(run=first, progress_percent=50.0, current_action="half")
    reporting.complete(run=first, result={"ok": True})
    run_lifecycle.stop_run(run=second, by=alice)
    events = events_of(experiment)
    assert [(e.seq, e.event_type, e.run_id) for e in events] == [
        (1, "experiment_created", None),
        (2, "experiment_updated", None),
        (3, "experiment_started", None),
        (4, "agent_initialized", first.public_id),
        (5, "agent_progress", first.public_id),
        (6, "agent_completed", first.public_id),
        (7, "agent_stopped", second.public_id),
        (8, "experiment_completed", None),
    ]
    assert events[4].data["progress_percent"] == 50.0
    assert events[4].data["current_action"] == "half"
    assert events[5].data["result"] == {"ok": True}
    assert events[6].data["reason"] == "operator"
    assert events[7].data["status"] == "completed"
    assert events[7].data["runs_by_status"] == {"completed": 1, "stopped": 1}


def test_every_run_failing_finishes_the_experiment_failed(alice):
    experiment, _ = experiment_in_status(alice, ExperimentStatus.FAILED, agents=2)
    assert event_types(experiment)[-2:] == ["agent_failed", "experiment_completed"]
    assert events_of(experiment)[-1].data["status"] == "failed"


def test_retry_of_a_finished_experiment_records_experiment_updated_back_to_running(alice):
    experiment, issued = experiment_in_status(alice, ExperimentStatus.STOPPED, agents=1)
    new_run, _token = run_lifecycle.retry_run(run=issued[0].run, by=alice)
    event = events_of(experiment)[-1]
    assert event.event_type == "experiment_updated"
    assert event.data["status"] == "running"
    assert event.data["added_run"]["id"] == new_run.public_id
    assert event.data["added_run"]["retry_of"] == issued[0].run.public_id
    assert event.data["added_run"]["status"] == "starting"


def test_plan_and_decision_events(alice):
    experiment, run, _token = run_in_status(alice, RunStatus.RUNNING)
    from agents import approval

    approval.submit_plan(run=run, plan={"steps": [1]})
    approval.decide_plan(run=run, by=alice, approved=True, feedback="go")
    assert event_types(experiment)[-3:] == ["plan_ready", "approval_required", "plan_approved"]
    assert events_of(experiment)[-1].data["feedback"] == "go"


def test_delete_records_experiment_deleted_last(alice):
    experiment, _ = make_experiment(alice)
    public_id = experiment.public_id
    lifecycle.delete_experiment(experiment=experiment, by=alice)
    events = events_of(public_id)
    assert [(e.event_type, e.seq) for e in events] == [("experiment_created", 1), ("experiment_deleted", 2)]
    assert events[1].data["id"] == public_id


def test_membership_changes_are_not_experiment_events(alice, dave):
    experiment, _ = make_experiment(alice)
    membership.set_member(experiment=experiment, username="dave", role=Role.VIEWER, by=alice)
    membership.remove_member(experiment=experiment, username="dave", by=alice)
    assert event_types(experiment) == ["experiment_created"]
