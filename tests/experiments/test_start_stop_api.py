"""POST experiments/{id}/start and /stop."""

from agents.models import AgentRun
from experiments.models import ExperimentStatus
from tests.experiments.recorded import event_types
from tests.factories import experiment_in_status, make_experiment, make_running

URL = "/api/research/experiments"


def test_start_makes_it_running_and_every_pending_run_starting(client_for, alice):
    experiment, _ = make_experiment(alice, agents=3)
    response = client_for(alice).post(f"{URL}/{experiment.public_id}/start")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "running"
    assert data["started_at"].endswith("Z")
    assert [r["status"] for r in data["runs"]] == ["starting"] * 3
    assert event_types(experiment) == ["experiment_created", "experiment_started"]


def test_start_of_an_experiment_with_no_runs_is_409(client_for, alice):
    experiment, _ = make_experiment(alice, agents=0)
    response = client_for(alice).post(f"{URL}/{experiment.public_id}/start")
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    experiment.refresh_from_db()
    assert experiment.status == "created"
    assert event_types(experiment) == ["experiment_created"]


def test_stop_stops_every_unfinished_run_and_the_experiment(client_for, alice):
    experiment, issued = experiment_in_status(alice, ExperimentStatus.RUNNING, agents=3)
    make_running(issued[1].run)
    response = client_for(alice).post(f"{URL}/{experiment.public_id}/stop")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "stopped"
    assert data["completed_at"].endswith("Z")
    assert [r["status"] for r in data["runs"]] == ["stopped"] * 3
    assert set(AgentRun.objects.filter(experiment=experiment).values_list("stop_reason", flat=True)) == {
        "experiment_stopped"
    }
    assert event_types(experiment)[-4:] == ["agent_stopped"] * 3 + ["experiment_stopped"]


def test_stop_leaves_finished_runs_as_they_are(client_for, alice):
    experiment, issued = experiment_in_status(alice, ExperimentStatus.RUNNING, agents=2)
    from agents import reporting

    reporting.complete(run=make_running(issued[0].run))
    response = client_for(alice).post(f"{URL}/{experiment.public_id}/stop")
    assert [r["status"] for r in response.json()["runs"]] == ["completed", "stopped"]
    assert event_types(experiment).count("agent_stopped") == 1
