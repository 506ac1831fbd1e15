"""The agent socket: token auth, the run snapshot, reports answered ack/error, and control
messages pushed at once whatever made the decision (REST, admin, command, timeout)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from agents import lifecycle
from agents.approval import expire_overdue_approvals
from agents.models import AgentRun, MetricPoint
from realtime.groups import run_group
from realtime.hub import get_hub
from realtime.models import Event
from tests.agents.conftest import run_events
from tests.agents.sockets import AgentSockets, in_thread
from tests.factories import api_client, make_experiment

pytestmark = pytest.mark.django_db(transaction=True)

# Long enough that only the live push, never the hub's repair sweep, can deliver a
# control message within the tests' timeouts.
AT_ONCE = 2.0


@pytest.fixture(autouse=True)
def _no_repair_sweep(settings):
    settings.REALTIME = {**settings.REALTIME, "SWEEP_SECONDS": 3600.0}


@pytest.fixture
async def sockets():
    opened = AgentSockets()
    yield opened
    await opened.close_all()


async def connect(sockets, agent):
    socket = await sockets.open(agent.id, f"Bearer {agent.token}")
    assert socket.accepted
    snapshot = await socket.recv()
    assert snapshot["type"] == "snapshot"
    return socket, snapshot


def post(user, path, body=None):
    return api_client(user).post(f"/api/research/{path}", body or {}, format="json")


# Connecting ------------------------------------------------------------------------------


async def test_the_agent_gets_its_run_as_a_snapshot_first(sockets, experiment, agent):
    _socket, snapshot = await connect(sockets, agent)

    assert snapshot["run"]["id"] == agent.id
    assert snapshot["run"]["status"] == "starting"
    assert snapshot["run"]["experiment_id"] == experiment.public_id
    assert "token" not in snapshot["run"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer rt_wrong", "Bearer ", "Basic abc", "Token nope"],
)
async def test_without_a_valid_run_token_the_socket_is_closed_4401(sockets, agent, authorization):
    socket = await sockets.open(agent.id, authorization)

    messages, code = await socket.messages_until_close()

    assert messages == []
    assert code == 4401


async def test_another_runs_token_is_closed_4401(sockets, agent, other_agent):
    socket = await sockets.open(agent.id, f"Bearer {other_agent.token}")

    messages, code = await socket.messages_until_close()

    assert (messages, code) == ([], 4401)


async def test_a_users_api_token_is_closed_4401(sockets, agent, team):
    from tests.factories import token_for

    key = await in_thread(token_for, team["owner"])
    socket = await sockets.open(agent.id, f"Token {key}")

    assert await socket.messages_until_close() == ([], 4401)


async def test_a_revoked_token_is_closed_4401(sockets, agent, team):
    await in_thread(post, team["operator"], f"agents/{agent.id}/token")

    socket = await sockets.open(agent.id, f"Bearer {agent.token}")

    assert await socket.messages_until_close() == ([], 4401)


# Control messages ------------------------------------------------------------------------


async def test_a_stop_through_rest_reaches_the_agent_at_once(sockets, agent, team):
    socket, _ = await connect(sockets, agent)

    response = await in_thread(post, team["operator"], f"agents/{agent.id}/stop")
    assert response.status_code == 200

    control = await socket.control(timeout=AT_ONCE)
    assert control["action"] == "stop"
    assert await socket.silent()  # told once


async def test_stopping_the_experiment_stops_every_agent_at_once(sockets, experiment, agent, other_agent, team):
    first, _ = await connect(sockets, agent)
    second, _ = await connect(sockets, other_agent)

    response = await in_thread(post, team["operator"], f"experiments/{experiment.public_id}/stop")
    assert response.status_code == 200

    assert (await first.control(timeout=AT_ONCE))["action"] == "stop"
    assert (await second.control(timeout=AT_ONCE))["action"] == "stop"


def _stop_through_the_admin(run: AgentRun) -> None:
    """The Django admin's "stop" action on the runs' change list, as a superuser clicks it."""
    admin_user = get_user_model().objects.create_superuser("admin", "admin@example.com", "x")
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/agents/agentrun/", {"action": "stop_runs", "_selected_action": [run.pk]}, follow=True
    )
    assert response.status_code == 200


async def test_a_stop_through_the_admin_reaches_the_agent_at_once(sockets, agent):
    socket, _ = await connect(sockets, agent)

    await in_thread(_stop_through_the_admin, agent.run)

    control = await socket.control(timeout=AT_ONCE)
    assert control["action"] == "stop"
    assert (await in_thread(agent.fresh)).status == "stopped"


async def test_an_approval_is_pushed_to_the_agent(sockets, agent, team):
    socket, _ = await connect(sockets, agent)
    assert (await socket.request({"type": "plan", "plan": {"steps": [1]}, "id": 1}))["type"] == "ack"

    await in_thread(post, team["operator"], f"agents/{agent.id}/approve", {"approved": True, "feedback": "ok"})

    control = await socket.control(timeout=AT_ONCE)
    assert control["action"] == "approved"
    assert control["feedback"] == "ok"
    assert await socket.silent()


async def test_a_rejection_is_pushed_with_its_feedback_then_the_stop(sockets, agent, team):
    socket, _ = await connect(sockets, agent)
    await socket.request({"type": "plan", "plan": "p"})

    await in_thread(post, team["operator"], f"agents/{agent.id}/approve", {"approved": False, "feedback": "Too broad"})

    rejected = await socket.control(timeout=AT_ONCE)
    assert rejected["action"] == "rejected"
    assert rejected["feedback"] == "Too broad"
    assert rejected.get("revise") in (False, None)
    assert (await socket.control(timeout=AT_ONCE))["action"] == "stop"


async def test_a_revision_request_is_a_rejection_with_feedback_and_no_stop(sockets, agent, team):
    socket, _ = await connect(sockets, agent)
    await socket.request({"type": "plan", "plan": "p"})

    await in_thread(
        post,
        team["operator"],
        f"agents/{agent.id}/approve",
        {"approved": False, "revise": True, "feedback": "Split it in two"},
    )

    control = await socket.control(timeout=AT_ONCE)
    assert control == {"type": "control", "action": "rejected", "revise": True, "feedback": "Split it in two"}
    assert await socket.silent()
    # The next round is heard too.
    assert (await socket.request({"type": "plan", "plan": "p2"}))["type"] == "ack"
    await in_thread(post, team["operator"], f"agents/{agent.id}/approve", {"approved": True})
    assert (await socket.control(timeout=AT_ONCE))["action"] == "approved"


async def test_a_rejection_without_feedback_carries_none(sockets, agent, team):
    socket, _ = await connect(sockets, agent)
    await socket.request({"type": "plan", "plan": "p"})

    await in_thread(post, team["operator"], f"agents/{agent.id}/approve", {"approved": False})

    assert "feedback" not in await socket.control(timeout=AT_ONCE)


async def test_a_decision_through_the_command_endpoint_is_pushed(sockets, agent, team):
    socket, _ = await connect(sockets, agent)
    await socket.request({"type": "plan", "plan": "p"})

    response = await in_thread(post, team["operator"], "command", {"command": f"reject {agent.id} not now"})
    assert response.status_code == 200

    control = await socket.control(timeout=AT_ONCE)
    assert (control["action"], control["feedback"]) == ("rejected", "not now")


def _time_out(agent) -> int:
    from datetime import timedelta

    from django.utils import timezone

    AgentRun.objects.filter(pk=agent.run.pk).update(approval_deadline=timezone.now() - timedelta(seconds=1))
    return expire_overdue_approvals()


async def test_the_approval_timeout_tells_the_agent_to_stop(sockets, agent):
    socket, _ = await connect(sockets, agent)
    await socket.request({"type": "plan", "plan": "p"})

    assert await in_thread(_time_out, agent) == 1

    control = await socket.control(timeout=AT_ONCE)
    assert control["action"] == "stop"
    assert control.get("reason") == "approval_timeout"
    run = await in_thread(agent.fresh)
    assert run.status == "failed"
    assert "approval_timeout" in run.error


async def test_a_stop_the_agent_missed_is_repaired_by_the_hub(sockets, agent, team, settings):
    """A control message the channel layer loses is sent by the hub's sweep from the run's
    stored state."""
    settings.REALTIME = {**settings.REALTIME, "SWEEP_SECONDS": 0.3}
    socket, _ = await connect(sockets, agent)
    # The layer forgets that this process follows the run: its control messages are lost.
    hub = get_hub()
    await hub.layer.group_discard(run_group(agent.id), hub.channel)

    await in_thread(lifecycle.stop_run, run=agent.run, by=team["operator"])

    control = await socket.control(timeout=5.0)
    assert control["action"] == "stop"
    assert await socket.silent()


async def test_a_socket_opened_after_the_stop_learns_it_from_the_snapshot(sockets, agent, team):
    await in_thread(post, team["operator"], f"agents/{agent.id}/stop")

    socket, snapshot = await connect(sockets, agent)

    assert snapshot["run"]["status"] == "stopped"
    assert await socket.silent()


# Reports over the socket -----------------------------------------------------------------


async def test_reports_over_the_socket_are_acked_with_their_id(sockets, experiment, agent):
    socket, _ = await connect(sockets, agent)

    progress = await socket.request({"type": "progress", "id": "p-1", "progress_percent": 30})
    metrics = await socket.request(
        {"type": "metrics", "id": 2, "points": [{"name": "loss", "value": 0.5}, {"name": "acc", "value": 0.9}]}
    )
    logs = await socket.request({"type": "logs", "id": 3, "lines": [{"level": "info", "message": "hi"}]})
    validation = await socket.request({"type": "validation", "id": 4, "passed": True})
    done = await socket.request({"type": "complete", "id": 5, "result": {"ok": True}})

    assert progress == {"type": "ack", "id": "p-1"}
    assert metrics == {"type": "ack", "accepted": 2, "id": 2}
    assert logs == {"type": "ack", "accepted": 1, "id": 3}
    assert validation == {"type": "ack", "id": 4}
    assert done == {"type": "ack", "id": 5}

    run = await in_thread(agent.fresh)
    assert run.status == "completed"
    assert run.result == {"ok": True}
    types = await in_thread(
        lambda: list(Event.objects.filter(run_id=agent.id).order_by("seq").values_list("event_type", flat=True))
    )
    assert types == [
        "agent_initialized",
        "agent_progress",
        "metrics_updated",
        "log_appended",
        "validation_completed",
        "agent_completed",
    ]


async def test_a_bad_report_over_the_socket_is_an_error_with_fields_and_stores_nothing(sockets, agent):
    socket, _ = await connect(sockets, agent)

    reply = await socket.request({"type": "progress", "id": 7, "progress_percent": 150})
    nan = await socket.request(
        {"type": "metrics", "id": 8, "points": [{"name": "loss", "value": float("nan")}]},
    )
    too_many = await socket.request(
        {"type": "metrics", "id": 9, "points": [{"name": "l", "value": 1.0}] * 1001},
    )

    assert reply["type"] == "error"
    assert reply["id"] == 7
    assert reply["code"] == "validation_error"
    assert "progress_percent" in reply["fields"]
    assert (nan["type"], nan["id"], nan["code"]) == ("error", 8, "validation_error")
    assert (too_many["type"], too_many["id"]) == ("error", 9)
    run = await in_thread(agent.fresh)
    assert run.status == "starting"
    assert await in_thread(MetricPoint.objects.count) == 0


async def test_unknown_or_malformed_messages_are_errors_and_the_socket_stays_open(sockets, agent):
    socket, _ = await connect(sockets, agent)

    unknown = await socket.request({"type": "dance", "id": "x"})
    await socket.communicator.send_to(text_data="{not json")
    malformed = await socket.recv()
    pong = await socket.request({"type": "ping", "id": 1})

    assert unknown["type"] == "error"
    assert unknown["id"] == "x"
    assert malformed["type"] == "error"
    assert pong == {"type": "pong", "id": 1}


async def test_reports_after_a_stop_are_409_conflict_errors(sockets, agent, team):
    socket, _ = await connect(sockets, agent)
    await in_thread(post, team["operator"], f"agents/{agent.id}/stop")
    assert (await socket.control(timeout=AT_ONCE))["action"] == "stop"

    reply = await socket.request({"type": "progress", "id": 1, "progress_percent": 10})

    assert reply == {"type": "error", "code": "conflict", "detail": reply["detail"], "id": 1}


async def test_socket_reports_honour_an_idempotency_key(sockets, agent):
    socket, _ = await connect(sockets, agent)
    report = {"type": "metrics", "idempotency_key": "once", "points": [{"name": "loss", "value": 1.0}]}

    first = await socket.request({**report, "id": 1})
    again = await socket.request({**report, "id": 2})
    changed = await socket.request({**report, "id": 3, "points": [{"name": "loss", "value": 2.0}]})

    assert first == {"type": "ack", "accepted": 1, "id": 1}
    assert again == {"type": "ack", "accepted": 1, "id": 2}
    assert (changed["type"], changed["code"]) == ("error", "unprocessable")
    assert await in_thread(MetricPoint.objects.count) == 1
    assert len(await in_thread(run_events, agent, "metrics_updated")) == 1


async def test_reports_on_a_pending_run_are_conflicts(sockets, team):
    _experiment, issued = await in_thread(make_experiment, team["owner"], agents=1)
    socket = await sockets.open(issued[0].run.public_id, f"Bearer {issued[0].token}")
    assert (await socket.recv())["type"] == "snapshot"

    reply = await socket.request({"type": "progress", "progress_percent": 1})

    assert reply["type"] == "error"
    assert reply["code"] == "conflict"


async def test_a_socket_opened_with_a_token_since_reissued_takes_no_more_reports(sockets, agent, team):
    socket, _ = await connect(sockets, agent)
    assert (await socket.request({"type": "progress", "id": 1, "progress_percent": 10}))["type"] == "ack"

    await in_thread(post, team["operator"], f"agents/{agent.id}/token")

    await socket.send({"type": "progress", "id": 2, "progress_percent": 20})
    messages, code = await socket.messages_until_close()
    assert messages == [{"type": "error", "code": "not_authenticated", "detail": messages[0]["detail"], "id": 2}]
    assert code == 4401
    assert (await in_thread(agent.fresh)).progress_percent == 10
