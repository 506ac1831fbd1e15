"""The agent's reports over REST: each endpoint, its state rules, its bounds."""

import json

import pytest

from agents.models import LogLine, MetricPoint, MetricSeries, RunStatus
from experiments.models import ExperimentStatus
from realtime.models import Event
from tests.agents.conftest import event_types, run_events
from tests.factories import api_client

pytestmark = pytest.mark.django_db

PROGRESS = {
    "progress_percent": 45,
    "current_action": "Implementing user authentication",
    "metrics": {"tokens_used": 15000, "cost": 0.75, "elapsed_time": 300},
}


def stored_state(agent) -> dict:
    """Everything a report could have changed, to prove a refused one changed nothing."""
    run = agent.fresh()
    return {
        "run": (run.status, run.progress_percent, run.current_action, run.metrics, run.plan, run.result),
        "points": MetricPoint.objects.filter(series__run=run).count(),
        "series": MetricSeries.objects.filter(run=run).count(),
        "logs": LogLine.objects.filter(run=run).count(),
        "events": Event.objects.filter(experiment_id=run.experiment.public_id).count(),
    }


# The first report and the run's status ---------------------------------------------------


def test_first_report_starts_the_run_before_applying_itself(experiment, agent):
    assert agent.fresh().status == RunStatus.STARTING

    response = agent.post("progress", PROGRESS)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == agent.id
    assert body["status"] == "running"
    assert body["progress_percent"] == 45.0
    assert body["current_action"] == "Implementing user authentication"
    assert body["metrics"] == {"tokens_used": 15000, "cost": 0.75, "elapsed_time": 300.0}
    assert body["started_at"] is not None
    assert event_types(experiment, run=agent.id) == ["agent_initialized", "agent_progress"]
    progress = run_events(agent, "agent_progress")[0]
    assert progress.data == {
        "run_id": agent.id,
        "agent_type": "claude_code",
        "progress_percent": 45.0,
        "current_action": "Implementing user authentication",
        "metrics": {"tokens_used": 15000, "cost": 0.75, "elapsed_time": 300.0},
    }


@pytest.mark.parametrize(
    ("kind", "body", "own_event"),
    [
        ("metrics", {"points": [{"name": "loss", "value": 1.0}]}, "metrics_updated"),
        ("logs", {"lines": [{"level": "info", "message": "hello"}]}, "log_appended"),
        ("plan", {"plan": {"steps": ["read", "write"]}}, "plan_ready"),
        ("validation", {"passed": True}, "validation_completed"),
        ("complete", {"result": {"ok": True}}, "agent_completed"),
        ("fail", {"error": "boom"}, "agent_failed"),
    ],
)
def test_every_kind_of_first_report_starts_the_run(experiment, agent, kind, body, own_event):
    response = agent.post(kind, body)

    assert response.status_code == 200, response.json()
    types = event_types(experiment, run=agent.id)
    assert types[0] == "agent_initialized"
    assert types[1] == own_event


def test_later_reports_do_not_initialize_again(experiment, agent):
    agent.post("progress", PROGRESS)
    agent.post("progress", {"progress_percent": 50})

    assert event_types(experiment, run=agent.id) == ["agent_initialized", "agent_progress", "agent_progress"]


def test_progress_keeps_unsent_fields_and_merges_metrics(agent):
    agent.post("progress", PROGRESS)

    body = agent.post("progress", {"progress_percent": 60, "metrics": {"cost": 1.5, "files": 3}}).json()

    assert body["current_action"] == "Implementing user authentication"
    assert body["metrics"] == {"tokens_used": 15000, "cost": 1.5, "elapsed_time": 300.0, "files": 3}


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("progress", {"progress_percent": 10}),
        ("metrics", {"points": [{"name": "loss", "value": 1.0}]}),
        ("logs", {"lines": [{"level": "info", "message": "hello"}]}),
        ("plan", {"plan": "a plan"}),
        ("validation", {"passed": True}),
        ("complete", {}),
        ("fail", {"error": "boom"}),
    ],
)
def test_reports_on_a_pending_run_are_409_and_store_nothing(pending_agent, kind, body):
    before = stored_state(pending_agent)

    response = pending_agent.post(kind, body)

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert stored_state(pending_agent) == before
    assert pending_agent.fresh().status == RunStatus.PENDING


@pytest.mark.parametrize("finish", ["complete", "fail", "stop"])
def test_reports_on_a_finished_run_are_409(agent, team, finish):
    agent.post("progress", {"progress_percent": 10})
    if finish == "stop":
        response = api_client(team["operator"]).post(f"/api/research/agents/{agent.id}/stop")
    else:
        response = agent.post(finish, {"error": "x"} if finish == "fail" else {})
    assert response.status_code == 200
    before = stored_state(agent)

    for kind, body in [
        ("progress", {"progress_percent": 20}),
        ("metrics", {"points": [{"name": "loss", "value": 1.0}]}),
        ("logs", {"lines": [{"level": "info", "message": "late"}]}),
        ("plan", {"plan": "late"}),
        ("complete", {}),
        ("fail", {"error": "late"}),
    ]:
        response = agent.post(kind, body)
        assert response.status_code == 409, kind
        assert response.json()["error"] == "conflict"
    assert stored_state(agent) == before


# Bounds: answered in the envelope, nothing stored ---------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("progress", {"progress_percent": 150}, "progress_percent"),
        ("progress", {"progress_percent": -1}, "progress_percent"),
        ("progress", {"progress_percent": "45"}, "progress_percent"),
        ("progress", {}, "progress_percent"),
        ("progress", {"progress_percent": 10, "metrics": {"cost": "cheap"}}, "metrics"),
        ("progress", {"progress_percent": 10, "metrics": {"tokens_used": -5}}, "metrics"),
        ("progress", {"progress_percent": 10, "metrics": {"tokens_used": 1.5}}, "metrics"),
        ("progress", {"progress_percent": 10, "surprise": 1}, "surprise"),
        ("progress", {"progress_percent": 10, "current_action": "x" * 1001}, "current_action"),
        ("metrics", {"points": []}, "points"),
        ("metrics", {"points": [{"name": "loss", "value": "1.0"}]}, "points"),
        ("metrics", {"points": [{"name": "", "value": 1.0}]}, "points"),
        ("metrics", {"points": [{"name": "loss", "value": True}]}, "points"),
        ("metrics", {"points": [{"name": "loss", "value": 1.0, "step": 1.5}]}, "points"),
        ("metrics", {"points": [{"name": "loss", "value": 1.0, "timestamp": "yesterday"}]}, "points"),
        ("logs", {"lines": [{"level": "loud", "message": "x"}]}, "lines"),
        ("logs", {"lines": [{"level": "info"}]}, "lines"),
        ("logs", {"lines": []}, "lines"),
        ("plan", {"plan": None}, "plan"),
        ("plan", {}, "plan"),
        ("validation", {"passed": "yes"}, "passed"),
        ("fail", {}, "error"),
        ("fail", {"error": 42}, "error"),
    ],
)
def test_ill_typed_reports_are_400_with_fields_and_store_nothing(agent, kind, body, field):
    before = stored_state(agent)

    response = agent.post(kind, body)

    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "validation_error"
    assert field in error["fields"]
    assert error["detail"]
    assert stored_state(agent) == before
    assert agent.fresh().status == RunStatus.STARTING


def test_metrics_batch_over_1000_points_is_refused_whole(agent):
    before = stored_state(agent)
    points = [{"name": "loss", "value": float(i)} for i in range(1001)]

    response = agent.post("metrics", {"points": points})

    assert response.status_code == 400
    assert "points" in response.json()["fields"]
    assert stored_state(agent) == before


def test_metrics_batch_with_one_bad_point_is_refused_whole(agent):
    before = stored_state(agent)
    points = [{"name": "loss", "value": float(i)} for i in range(10)]
    points[7]["value"] = "seven"

    response = agent.post("metrics", {"points": points})

    assert response.status_code == 400
    assert response.json()["fields"] == {"points": {"7": {"value": ["A number is required."]}}}
    assert stored_state(agent) == before


def test_exactly_1000_points_and_1000_lines_are_accepted(agent):
    points = [{"name": "loss", "value": float(i)} for i in range(1000)]
    lines = [{"level": "info", "message": f"line {i}"} for i in range(1000)]

    assert agent.post("metrics", {"points": points}).json() == {"accepted": 1000}
    assert agent.post("logs", {"lines": lines}).json() == {"accepted": 1000}


def test_logs_over_1000_lines_are_refused(agent):
    before = stored_state(agent)
    lines = [{"level": "info", "message": "x"} for _ in range(1001)]

    response = agent.post("logs", {"lines": lines})

    assert response.status_code == 400
    assert "lines" in response.json()["fields"]
    assert stored_state(agent) == before


def test_a_log_message_over_64_kib_is_refused(agent):
    before = stored_state(agent)
    lines = [{"level": "info", "message": "ok"}, {"level": "info", "message": "x" * (64 * 1024 + 1)}]

    response = agent.post("logs", {"lines": lines})

    assert response.status_code == 400
    assert response.json()["fields"] == {"lines": {"1": {"message": ["At most 65536 bytes."]}}}
    assert stored_state(agent) == before


def test_a_log_message_of_exactly_64_kib_is_kept_whole(agent):
    message = "é" * (32 * 1024)  # two bytes each

    assert agent.post("logs", {"lines": [{"level": "info", "message": message}]}).status_code == 200
    assert LogLine.objects.get(run=agent.run).message == message


@pytest.mark.parametrize(
    "raw",
    [
        '{"progress_percent": NaN}',
        '{"progress_percent": Infinity}',
        '{"progress_percent": 10, "metrics": {"cost": -Infinity}}',
    ],
)
def test_nan_and_infinity_are_refused(agent, raw):
    before = stored_state(agent)

    response = agent.client.post(f"/api/research/agents/{agent.id}/progress", raw, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] in ("bad_request", "validation_error")
    assert stored_state(agent) == before


def test_nan_metric_points_are_refused(agent):
    before = stored_state(agent)
    raw = '{"points": [{"name": "loss", "value": 1.0}, {"name": "loss", "value": NaN}]}'

    response = agent.client.post(f"/api/research/agents/{agent.id}/metrics", raw, content_type="application/json")

    assert response.status_code == 400
    assert stored_state(agent) == before


def test_a_body_over_one_mib_is_413_in_the_envelope(agent):
    before = stored_state(agent)
    raw = json.dumps({"lines": [{"level": "info", "message": "x" * 60_000} for _ in range(20)]})
    assert len(raw) > 1024 * 1024

    response = agent.client.post(f"/api/research/agents/{agent.id}/logs", raw, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert stored_state(agent) == before


def test_a_body_that_is_not_json_is_refused(agent):
    response = agent.client.post(f"/api/research/agents/{agent.id}/progress", "progress=10", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_malformed_json_is_400(agent):
    response = agent.client.post(
        f"/api/research/agents/{agent.id}/progress", '{"progress_percent": ', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"] in ("bad_request", "validation_error")


# Metrics ---------------------------------------------------------------------------------


def test_metrics_batch_records_one_event_with_the_latest_value_of_each_metric(experiment, agent):
    points = [
        {"name": "loss", "value": 0.9, "step": 1},
        {"name": "accuracy", "value": 0.5, "step": 1},
        {"name": "loss", "value": 0.7, "step": 2},
        {"name": "loss", "value": 0.4, "step": 3},
        {"name": "accuracy", "value": 0.6, "step": 2},
    ]

    response = agent.post("metrics", {"points": points})

    assert response.status_code == 200
    assert response.json() == {"accepted": 5}
    events = run_events(agent, "metrics_updated")
    assert len(events) == 1
    assert events[0].data["metrics"] == {"loss": 0.4, "accuracy": 0.6}
    assert events[0].data["steps"] == {"loss": 3, "accuracy": 2}
    assert events[0].data["count"] == 5
    stored = list(
        MetricPoint.objects.filter(series__run=agent.run, series__name="loss")
        .order_by("idx")
        .values_list("step", "value")
    )
    assert stored == [(1, 0.9), (2, 0.7), (3, 0.4)]


def test_points_without_a_step_count_on_from_the_last_step(agent):
    agent.post("metrics", {"points": [{"name": "loss", "value": 1.0, "step": 10}]})

    agent.post("metrics", {"points": [{"name": "loss", "value": 0.5}, {"name": "loss", "value": 0.25}]})
    agent.post("metrics", {"points": [{"name": "fresh", "value": 3.0}]})

    steps = dict(
        MetricSeries.objects.filter(run=agent.run).values_list("name", "last_step"),
    )
    assert steps == {"loss": 12, "fresh": 0}


def test_points_keep_the_timestamp_they_were_sent_with(agent):
    agent.post("metrics", {"points": [{"name": "loss", "value": 1.0, "timestamp": "2025-01-26T10:05:00Z"}]})

    point = MetricPoint.objects.get(series__run=agent.run)
    assert point.timestamp.isoformat() == "2025-01-26T10:05:00+00:00"


# Logs ------------------------------------------------------------------------------------


def test_logs_are_stored_and_read_back_in_order(agent, team):
    lines = [
        {"level": "info", "message": "starting"},
        {"level": "warn", "message": "slow disk"},
        {"level": "error", "message": "test failed", "timestamp": "2025-01-26T10:05:00Z"},
    ]
    assert agent.post("logs", {"lines": lines}).json() == {"accepted": 3}

    own = agent.client.get(f"/api/research/agents/{agent.id}/logs")
    viewer = api_client(team["viewer"]).get(f"/api/research/agents/{agent.id}/logs")

    assert own.status_code == 200
    assert own.json() == viewer.json()
    body = own.json()
    assert body["count"] == 3
    assert [(line["level"], line["message"]) for line in body["results"]] == [
        ("info", "starting"),
        ("warning", "slow disk"),
        ("error", "test failed"),
    ]
    assert body["results"][2]["timestamp"] == "2025-01-26T10:05:00Z"
    assert body["results"][0]["timestamp"].endswith("Z")


def test_logs_record_log_appended_and_error_occurred(agent):
    agent.post("logs", {"lines": [{"level": "info", "message": "a"}, {"level": "error", "message": "bad"}]})

    [appended] = run_events(agent, "log_appended")
    assert appended.data["count"] == 2
    assert [line["message"] for line in appended.data["lines"]] == ["a", "bad"]
    [error] = run_events(agent, "error_occurred")
    assert error.data["message"] == "bad"


def test_log_reads_filter_by_level_and_after(agent):
    agent.post(
        "logs",
        {"lines": [{"level": "info", "message": str(i)} for i in range(3)] + [{"level": "error", "message": "e"}]},
    )
    url = f"/api/research/agents/{agent.id}/logs"
    first_id = agent.client.get(url).json()["results"][0]["id"]

    errors = agent.client.get(url, {"level": "error"}).json()
    after = agent.client.get(url, {"after": first_id}).json()

    assert [line["message"] for line in errors["results"]] == ["e"]
    assert [line["message"] for line in after["results"]] == ["1", "2", "e"]
    assert agent.client.get(url, {"level": "loud"}).status_code == 400
    assert agent.client.get(url, {"after": "x"}).status_code == 400


def test_log_reads_are_paginated(agent):
    agent.post("logs", {"lines": [{"level": "info", "message": str(i)} for i in range(25)]})

    page = agent.client.get(f"/api/research/agents/{agent.id}/logs", {"page_size": 20}).json()

    assert page["count"] == 25
    assert len(page["results"]) == 20
    assert page["next"] is not None


def test_logs_of_a_run_are_hidden_from_non_members(agent, team):
    response = api_client(team["outsider"]).get(f"/api/research/agents/{agent.id}/logs")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# Plan, validation, complete, fail --------------------------------------------------------


def test_a_plan_puts_the_run_in_awaiting_approval(experiment, agent):
    agent.post("progress", {"progress_percent": 5})

    response = agent.post("plan", {"plan": {"steps": ["read the code", "write the tests"]}})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "awaiting_approval"
    assert body["plan"] == {"steps": ["read the code", "write the tests"]}
    assert body["approval"]["state"] == "pending"
    assert body["approval"]["deadline"].endswith("Z")
    assert event_types(experiment, run=agent.id)[-2:] == ["plan_ready", "approval_required"]
    [required] = run_events(agent, "approval_required")
    assert required.data["timeout_seconds"] == 300


def test_a_second_plan_while_awaiting_approval_is_409(agent):
    agent.post("plan", {"plan": "first"})

    response = agent.post("plan", {"plan": "second"})

    assert response.status_code == 409
    assert agent.fresh().plan == "first"


def test_validation_is_recorded(agent):
    body = agent.post("validation", {"passed": False, "details": {"failing": ["test_login"]}}).json()

    assert body["validation"]["passed"] is False
    assert body["validation"]["details"] == {"failing": ["test_login"]}
    [event] = run_events(agent, "validation_completed")
    assert event.data["passed"] is False
    assert event.data["details"] == {"failing": ["test_login"]}


@pytest.mark.parametrize(("kind", "body"), [("validation", {"passed": True}), ("complete", {})])
def test_validation_and_completion_wait_for_the_plan_decision(agent, kind, body):
    agent.post("plan", {"plan": "p"})

    response = agent.post(kind, body)

    assert response.status_code == 409
    assert agent.fresh().status == RunStatus.AWAITING_APPROVAL


def test_complete_finishes_the_run_with_its_result_and_metrics(experiment, agent):
    agent.post("progress", PROGRESS)

    body = agent.post("complete", {"result": {"pr": 17}, "metrics": {"tokens_used": 20000}}).json()

    assert body["status"] == "completed"
    assert body["progress_percent"] == 100.0
    assert body["result"] == {"pr": 17}
    assert body["metrics"]["tokens_used"] == 20000
    assert body["metrics"]["cost"] == 0.75
    assert body["completed_at"] is not None
    [event] = run_events(agent, "agent_completed")
    assert event.data["result"] == {"pr": 17}


def test_fail_finishes_the_run_with_its_error(agent):
    body = agent.post("fail", {"error": "Out of memory"}).json()

    assert body["status"] == "failed"
    assert body["error"] == "Out of memory"
    [event] = run_events(agent, "agent_failed")
    assert event.data["error"] == "Out of memory"
    assert event.data["reason"] == "agent_reported"


def test_the_experiment_finishes_when_its_last_run_reports_the_end(experiment, agent, other_agent):
    agent.post("complete", {})
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.RUNNING

    other_agent.post("fail", {"error": "x"})

    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.COMPLETED
    assert event_types(experiment)[-1] == "experiment_completed"
