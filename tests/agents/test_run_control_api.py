"""Runs for operators: GET agents[/{id}], POST agents/{id}/stop|retry|token, POST agents/bulk."""

import re

import pytest

from agents.models import AgentRun, RunStatus
from agents.tokens import hash_token
from experiments.models import ExperimentStatus, Role
from realtime.models import Event
from tests.factories import agent_client, experiment_in_status, make_experiment, run_in_status

URL = "/api/research/agents"
UNFINISHED = [RunStatus.PENDING, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL]


def last_event(experiment) -> Event:
    return Event.objects.filter(experiment_id=experiment.public_id).order_by("-seq").first()


# List and detail -----------------------------------------------------------------------


def test_list_shows_the_runs_of_visible_experiments_only(client_for, alice, bob):
    _mine, issued = make_experiment(alice, agents=2)
    make_experiment(bob, agents=3)
    response = client_for(alice).get(URL)
    assert response.status_code == 200
    assert response.json()["count"] == 2
    assert [r["id"] for r in response.json()["results"]] == [i.run.public_id for i in issued]


def test_list_filters_by_experiment_status_and_agent_type(client_for, alice):
    first, _ = make_experiment(alice, agents=2, agent_type="codex")
    _second, issued = experiment_in_status(alice, ExperimentStatus.RUNNING, agents=1)
    client = client_for(alice)
    by_experiment = client.get(URL, {"experiment": first.public_id}).json()
    assert by_experiment["count"] == 2
    by_status = client.get(URL, {"status": "starting"}).json()
    assert [r["id"] for r in by_status["results"]] == [issued[0].run.public_id]
    by_type = client.get(URL, {"agent_type": "codex"}).json()
    assert {r["experiment_id"] for r in by_type["results"]} == {first.public_id}
    assert client.get(URL, {"agent_type": "nobody"}).json()["count"] == 0


@pytest.mark.parametrize("query", [{"status": "bogus"}, {"experiment": "exp_unknown"}])
def test_list_unknown_filter_value_is_400(client_for, alice, query):
    make_experiment(alice)
    response = client_for(alice).get(URL, query)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert set(query) <= set(response.json()["fields"])


def test_filtering_by_an_invisible_experiment_is_400_not_its_runs(client_for, alice, bob):
    theirs, _ = make_experiment(bob)
    response = client_for(alice).get(URL, {"experiment": theirs.public_id})
    assert response.status_code == 400


def test_detail_has_every_contract_field(client_for, alice):
    _experiment, run, _token = run_in_status(alice, RunStatus.RUNNING)
    response = client_for(alice).get(f"{URL}/{run.public_id}")
    assert response.status_code == 200
    data = response.json()
    assert data["id"] == run.public_id
    assert data["status"] == "running"
    assert data["progress_percent"] == 10.0
    assert data["current_action"] == "working"
    assert data["started_at"].endswith("Z")
    assert {"tokens_used", "cost", "elapsed_time"} <= set(data["metrics"])
    for field in ("experiment_id", "agent_type", "name", "attempt", "retry_of", "plan", "approval", "error"):
        assert field in data


def test_detail_of_an_invisible_run_is_404(client_for, alice, dave):
    _experiment, run, _token = run_in_status(alice, RunStatus.PENDING)
    assert client_for(dave).get(f"{URL}/{run.public_id}").status_code == 404
    assert client_for(alice).get(f"{URL}/run_unknown").status_code == 404


# Stop ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", UNFINISHED)
def test_stop_of_an_unfinished_run_is_200_and_stopped(client_for, alice, status):
    experiment, run, _token = run_in_status(alice, status)
    response = client_for(alice).post(f"{URL}/{run.public_id}/stop")
    assert response.status_code == 200
    assert response.json()["status"] == "stopped"
    assert response.json()["stop_reason"] == "operator"
    event = last_event(experiment)
    assert (event.event_type, event.run_id) == ("agent_stopped", run.public_id)
    assert event.data["reason"] == "operator"


def test_stopped_run_gets_409_for_its_later_reports(client_for, alice):
    _experiment, run, token = run_in_status(alice, RunStatus.RUNNING)
    client_for(alice).post(f"{URL}/{run.public_id}/stop")
    response = agent_client(token).post(f"{URL}/{run.public_id}/progress", {"progress_percent": 50})
    assert response.status_code == 409


def test_stopping_the_last_unfinished_run_finishes_the_experiment(client_for, alice):
    experiment, issued = experiment_in_status(alice, ExperimentStatus.RUNNING, agents=1)
    client_for(alice).post(f"{URL}/{issued[0].run.public_id}/stop")
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    assert last_event(experiment).event_type == "experiment_stopped"


# Bulk stop -----------------------------------------------------------------------------


def test_bulk_stop_answers_one_outcome_per_run_in_order(client_for, alice, bob):
    _experiment, issued = experiment_in_status(alice, ExperimentStatus.RUNNING, agents=3)
    _, finished, _ = run_in_status(alice, RunStatus.COMPLETED)
    _, invisible, _ = run_in_status(bob, RunStatus.RUNNING)
    ids = [issued[0].run.public_id, finished.public_id, invisible.public_id, "run_missing", issued[1].run.public_id]
    response = client_for(alice).post(f"{URL}/bulk", {"action": "stop", "run_ids": ids})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == ids
    assert results[0] == {"id": ids[0], "ok": True, "status": "stopped"}
    assert results[1]["ok"] is False
    assert results[1]["error"] == "conflict"
    assert results[2] == {"id": ids[2], "ok": False, "error": "not_found"}
    assert results[3] == {"id": ids[3], "ok": False, "error": "not_found"}
    assert results[4] == {"id": ids[4], "ok": True, "status": "stopped"}
    assert AgentRun.objects.get(pk=invisible.pk).status == "running"
    assert AgentRun.objects.get(pk=issued[2].run.pk).status == "starting"


def test_bulk_stop_by_a_viewer_is_refused_per_run(client_for, alice, charlie):
    _experiment, issued = experiment_in_status(
        alice, ExperimentStatus.RUNNING, agents=1, members={charlie: Role.VIEWER}
    )
    run_id = issued[0].run.public_id
    response = client_for(charlie).post(f"{URL}/bulk", {"action": "stop", "run_ids": [run_id]})
    assert response.json()["results"] == [{"id": run_id, "ok": False, "error": "permission_denied"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "retry", "run_ids": ["run_x"]}, "action"),
        ({"action": "stop", "run_ids": []}, "run_ids"),
        ({"action": "stop"}, "run_ids"),
        ({"action": "stop", "run_ids": ["run_x"], "force": True}, "force"),
    ],
)
def test_bulk_bad_body_is_400(client_for, alice, body, field):
    response = client_for(alice).post(f"{URL}/bulk", body)
    assert response.status_code == 400
    assert field in response.json()["fields"]


# Retry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.STOPPED])
def test_retry_makes_the_next_attempt_starting_in_a_running_experiment(client_for, alice, status):
    experiment, run, _token = run_in_status(alice, status)
    response = client_for(alice).post(f"{URL}/{run.public_id}/retry")
    assert response.status_code == 201
    data = response.json()
    assert data["id"] != run.public_id
    assert data["attempt"] == 2
    assert data["retry_of"] == run.public_id
    assert data["status"] == "starting"
    assert data["experiment_id"] == experiment.public_id
    assert data["agent_type"] == run.agent_type
    assert data["name"] == run.name
    new_run = AgentRun.objects.get(public_id=data["id"])
    assert new_run.token_hash == hash_token(data["token"])
    event = last_event(experiment)
    assert event.event_type == "experiment_updated"
    assert event.data["added_run"]["id"] == data["id"]
    assert "status" not in event.data


def test_the_new_attempts_token_reports_on_it(client_for, alice):
    _experiment, run, _token = run_in_status(alice, RunStatus.FAILED)
    data = client_for(alice).post(f"{URL}/{run.public_id}/retry").json()
    response = agent_client(data["token"]).post(f"{URL}/{data['id']}/progress", {"progress_percent": 5})
    assert response.status_code == 200
    assert response.json()["status"] == "running"


@pytest.mark.parametrize("status", [ExperimentStatus.STOPPED, ExperimentStatus.FAILED])
def test_retry_reopens_a_finished_experiment(client_for, alice, status):
    experiment, issued = experiment_in_status(alice, status, agents=1)
    response = client_for(alice).post(f"{URL}/{issued[0].run.public_id}/retry")
    assert response.status_code == 201
    assert response.json()["status"] == "starting"
    experiment.refresh_from_db()
    assert experiment.status == "running"
    assert experiment.completed_at is None
    event = last_event(experiment)
    assert event.event_type == "experiment_updated"
    assert event.data["status"] == "running"
    assert event.data["completed_at"] is None
    assert event.data["added_run"]["attempt"] == 2


def test_retry_of_a_run_stopped_before_the_start_stays_pending(client_for, alice):
    experiment, run, _token = run_in_status(alice, RunStatus.PENDING)
    client_for(alice).post(f"{URL}/{run.public_id}/stop")
    response = client_for(alice).post(f"{URL}/{run.public_id}/retry")
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    experiment.refresh_from_db()
    assert experiment.status == "created"


def test_a_run_is_retried_once_then_its_latest_attempt_is(client_for, alice):
    _experiment, run, _token = run_in_status(alice, RunStatus.FAILED)
    client_for(alice).post(f"{URL}/{run.public_id}/retry")
    response = client_for(alice).post(f"{URL}/{run.public_id}/retry")
    assert response.status_code == 409
    assert AgentRun.objects.filter(retry_of=run).count() == 1


# Token re-issue ------------------------------------------------------------------------


def test_token_reissue_returns_a_new_token_and_the_old_one_stops_working(client_for, alice):
    _experiment, run, old_token = run_in_status(alice, RunStatus.RUNNING)
    response = client_for(alice).post(f"{URL}/{run.public_id}/token")
    assert response.status_code == 200
    new_token = response.json()["token"]
    assert re.fullmatch(r"rt_[A-Za-z0-9]{40}", new_token)
    assert new_token != old_token
    report = {"progress_percent": 20}
    old = agent_client(old_token).post(f"{URL}/{run.public_id}/progress", report)
    assert old.status_code == 401
    assert old.json()["error"] == "not_authenticated"
    new = agent_client(new_token).post(f"{URL}/{run.public_id}/progress", report)
    assert new.status_code == 200
    assert new.json()["progress_percent"] == 20


def test_token_reissue_of_an_invisible_run_is_404(client_for, alice, dave):
    _experiment, run, token = run_in_status(alice, RunStatus.RUNNING)
    assert client_for(dave).post(f"{URL}/{run.public_id}/token").status_code == 404
    assert agent_client(token).post(f"{URL}/{run.public_id}/progress", {"progress_percent": 1}).status_code == 200
