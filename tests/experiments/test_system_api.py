"""GET status, GET/POST config, POST command, /health, and the schema and docs pages."""

import pytest
from django.db import OperationalError

from agents.models import RunStatus
from experiments import runtime_config
from experiments.models import ExperimentStatus, Role, RuntimeSetting
from realtime.models import Event
from tests.experiments.recorded import event_types
from tests.factories import experiment_in_status, make_experiment, run_in_status

STATUS = "/api/research/status"
CONFIG = "/api/research/config"
COMMAND = "/api/research/command"


# status --------------------------------------------------------------------------------


def test_status_reports_health_and_the_callers_experiments(client_for, alice, bob):
    make_experiment(alice)
    experiment_in_status(alice, ExperimentStatus.RUNNING)
    make_experiment(bob)
    response = client_for(alice).get(STATUS)
    assert response.status_code == 200
    data = response.json()
    assert data["database"]["ok"] is True
    assert isinstance(data["database"]["latency_ms"], float)
    assert data["channel_layer"]["ok"] is True
    assert data["channel_layer"]["backend"]
    assert data["version"]
    assert data["uptime_seconds"] >= 0
    assert "connections" in data
    assert data["experiments"] == {"created": 1, "running": 1, "completed": 0, "stopped": 0, "failed": 0}


def test_status_needs_credentials(anon, db):
    assert anon.get(STATUS).status_code == 401


# health --------------------------------------------------------------------------------


def test_health_answers_without_credentials(anon, db):
    response = anon.get("/health")
    assert response.status_code == 200
    assert response.json()["database"]["ok"] is True


def test_health_answers_head_for_probes(anon, db):
    assert anon.head("/health").status_code == 200


def test_health_is_503_when_the_database_does_not_answer(anon, db, monkeypatch):
    from experiments import system

    def broken_cursor():
        raise OperationalError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(system.connection, "cursor", broken_cursor)
        response = anon.get("/health")
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"


# config --------------------------------------------------------------------------------


def test_staff_reads_the_defaults(client_for, staff):
    response = client_for(staff).get(CONFIG)
    assert response.status_code == 200
    assert response.json() == {
        "approval_timeout_seconds": 300,
        "event_retention_days": 30,
        "user_rate_per_minute": 1200,
        "anon_rate_per_minute": 120,
        "agent_rate_per_minute": 6000,
        "ws_messages_per_second": 50,
    }


def test_post_changes_some_keys_answers_the_whole_config_and_broadcasts(client_for, staff):
    response = client_for(staff).post(CONFIG, {"approval_timeout_seconds": 10, "ws_messages_per_second": 5})
    assert response.status_code == 200
    data = response.json()
    assert data["approval_timeout_seconds"] == 10
    assert data["ws_messages_per_second"] == 5
    assert data["event_retention_days"] == 30
    assert runtime_config.get("approval_timeout_seconds") == 10
    event = Event.objects.get(event_type="config_updated")
    assert (event.experiment_id, event.seq) == (None, None)
    assert event.data["changed"] == {"approval_timeout_seconds": 10, "ws_messages_per_second": 5}
    assert event.data["config"] == data


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"approval_timeout_seconds": 4}, "approval_timeout_seconds"),
        ({"approval_timeout_seconds": 86_401}, "approval_timeout_seconds"),
        ({"event_retention_days": 0}, "event_retention_days"),
        ({"user_rate_per_minute": "100"}, "user_rate_per_minute"),
        ({"anon_rate_per_minute": 1.5}, "anon_rate_per_minute"),
        ({"ws_messages_per_second": True}, "ws_messages_per_second"),
        ({"colour": "blue"}, "colour"),
        ({}, "non_field_errors"),
    ],
)
def test_invalid_config_is_400_with_fields_and_changes_nothing(client_for, staff, body, bad):
    body = {"approval_timeout_seconds": 60, **body} if bad != "approval_timeout_seconds" and body else body
    response = client_for(staff).post(CONFIG, body)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert bad in response.json()["fields"]
    # The valid key sent beside the bad one was not applied either.
    assert not RuntimeSetting.objects.exists()
    assert runtime_config.get("approval_timeout_seconds") == 300
    assert not Event.objects.filter(event_type="config_updated").exists()


def test_config_body_must_be_an_object(client_for, staff):
    response = client_for(staff).post(CONFIG, [1, 2], format="json")
    assert response.status_code == 400


def test_config_is_staff_only(client_for, alice, anon):
    assert client_for(alice).get(CONFIG).status_code == 403
    response = client_for(alice).post(CONFIG, {"approval_timeout_seconds": 10})
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert anon.get(CONFIG).status_code == 401
    assert runtime_config.get("approval_timeout_seconds") == 300


# command -------------------------------------------------------------------------------


def test_status_command(client_for, alice):
    make_experiment(alice)
    response = client_for(alice).post(COMMAND, {"command": "status"})
    assert response.status_code == 200
    data = response.json()
    assert (data["action"], data["target"]) == ("status", None)
    assert data["result"]["experiments"]["created"] == 1


def test_start_and_stop_commands_call_the_lifecycle(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).post(COMMAND, {"command": f"start {experiment.public_id}"})
    assert response.status_code == 200
    assert response.json() == {
        "action": "start",
        "target": experiment.public_id,
        "result": response.json()["result"],
    }
    assert response.json()["result"]["status"] == "running"
    response = client_for(alice).post(COMMAND, {"command": f"stop {experiment.public_id}"})
    assert response.json()["result"]["status"] == "stopped"
    assert event_types(experiment)[-1] == "experiment_stopped"


def test_approve_command(client_for, alice):
    _experiment, run, _token = run_in_status(alice, RunStatus.AWAITING_APPROVAL)
    response = client_for(alice).post(COMMAND, {"command": f"approve {run.public_id}"})
    assert response.status_code == 200
    assert response.json()["result"]["status"] == "running"
    assert response.json()["result"]["approval"]["state"] == "approved"


def test_reject_command_carries_the_feedback(client_for, alice):
    experiment, run, _token = run_in_status(alice, RunStatus.AWAITING_APPROVAL)
    response = client_for(alice).post(COMMAND, {"command": f"reject {run.public_id} too risky, split it"})
    assert response.status_code == 200
    assert response.json()["result"]["status"] == "stopped"
    rejected = Event.objects.get(experiment_id=experiment.public_id, event_type="plan_rejected")
    assert rejected.data["feedback"] == "too risky, split it"


@pytest.mark.parametrize(
    "command",
    ["", "   ", "dance", "start", "start run_abc", "stop exp_a exp_b", "approve", "approve exp_abc", "status now", 42],
)
def test_commands_outside_the_grammar_are_400_with_error(client_for, alice, command):
    response = client_for(alice).post(COMMAND, {"command": command})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert response.json()["detail"]


def test_command_with_an_unknown_field_is_400(client_for, alice):
    response = client_for(alice).post(COMMAND, {"command": "status", "force": True})
    assert response.status_code == 400
    assert "force" in response.json()["fields"]


def test_command_on_an_invisible_experiment_is_404(client_for, alice, dave):
    experiment, _ = make_experiment(alice)
    response = client_for(dave).post(COMMAND, {"command": f"start {experiment.public_id}"})
    assert response.status_code == 404


def test_command_needs_the_same_role_as_the_endpoint(client_for, alice, charlie):
    experiment, _ = make_experiment(alice, members={charlie: Role.VIEWER})
    response = client_for(charlie).post(COMMAND, {"command": f"start {experiment.public_id}"})
    assert response.status_code == 403
    experiment.refresh_from_db()
    assert experiment.status == "created"


def test_command_on_an_illegal_move_is_409(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).post(COMMAND, {"command": f"stop {experiment.public_id}"})
    assert response.status_code == 409


def test_approve_command_on_a_run_not_awaiting_approval_is_409(client_for, alice):
    _experiment, run, _token = run_in_status(alice, RunStatus.RUNNING)
    assert client_for(alice).post(COMMAND, {"command": f"approve {run.public_id}"}).status_code == 409


# schema and docs -----------------------------------------------------------------------


def test_schema_and_docs_need_no_credentials(anon, db):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/research/experiments" in paths
    assert "/api/research/experiments/{id}/start" in paths
    assert "/api/research/agents/{run_id}/retry" in paths
    for page in ("/api/docs/", "/api/redoc/"):
        response = anon.get(page)
        assert response.status_code == 200
        assert b"cdn" not in response.content.lower()
