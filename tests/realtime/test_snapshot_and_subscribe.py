"""What a socket sees first, and what its subscriptions let through."""

import pytest
from channels.db import database_sync_to_async

from experiments import lifecycle
from realtime.store import last_event_id
from tests.realtime.conftest import current_seq, experiment_for, produce, report_progress

pytestmark = pytest.mark.django_db(transaction=True)

GLOBAL = "/ws/research/"


def experiment_path(experiment, query: str = "") -> str:
    return f"/ws/research/experiments/{experiment.public_id}/{query}"


# Snapshots -------------------------------------------------------------------------------


async def test_experiment_path_snapshot_has_the_experiment_its_runs_and_current_seq(ws, alice, bob):
    experiment, runs = await experiment_for(alice, started=True, members={bob: "viewer"})
    await report_progress(runs[0], 30.0, current_action="Reading the code")
    socket = await ws(experiment_path(experiment), bob)
    snapshot = await socket.recv_type("snapshot")
    assert set(snapshot) == {"type", "experiment", "runs", "seq"}
    assert snapshot["seq"] == await current_seq(experiment.public_id) == 4
    assert snapshot["experiment"]["id"] == experiment.public_id
    assert snapshot["experiment"]["status"] == "running"
    assert snapshot["experiment"]["role"] == "viewer"
    assert [run["id"] for run in snapshot["runs"]] == [run.public_id for run in runs]
    first = snapshot["runs"][0]
    assert first["status"] == "running"
    assert first["progress_percent"] == 30.0
    assert first["current_action"] == "Reading the code"
    assert "token" not in first
    # Nothing but live events follows the snapshot.
    assert await socket.silent()


async def test_global_snapshot_lists_only_the_callers_running_experiments(ws, alice, bob):
    running, _ = await experiment_for(alice, started=True, name="mine, running")
    await experiment_for(alice, name="mine, not started")
    shared, _ = await experiment_for(bob, started=True, members={alice: "viewer"}, name="shared")
    await experiment_for(bob, started=True, name="bob's own")
    socket = await ws(GLOBAL, alice)
    snapshot = await socket.recv_type("snapshot")
    assert set(snapshot) == {"type", "status", "experiments", "last_event_id"}
    assert {e["id"] for e in snapshot["experiments"]} == {running.public_id, shared.public_id}
    assert all(e["status"] == "running" for e in snapshot["experiments"])
    assert snapshot["last_event_id"] == await database_sync_to_async(last_event_id)()
    status = snapshot["status"]
    assert status["database"]["ok"] is True
    assert status["channel_layer"]["ok"] is True
    assert status["experiments"]["running"] == 2
    assert status["experiments"]["created"] == 1
    assert status["connections"] >= 1
    assert {"version", "uptime_seconds"} <= set(status)


async def test_staff_global_snapshot_lists_every_running_experiment(ws, alice, bob, staff):
    await experiment_for(alice, started=True)
    await experiment_for(bob, started=True)
    snapshot = await (await ws(GLOBAL, staff)).recv_type("snapshot")
    assert len(snapshot["experiments"]) == 2


async def test_experiment_path_of_an_experiment_you_may_not_see_is_closed_4403(ws, alice, bob):
    experiment, _ = await experiment_for(bob)
    for path in (experiment_path(experiment), "/ws/research/experiments/exp_doesNotExist000000000/"):
        socket = await ws(path, alice)
        assert socket.accepted
        messages, code = await socket.messages_until_close()
        assert code == 4403
        assert [m["type"] for m in messages] == ["error"]
        assert messages[0]["code"] == "forbidden"


async def test_experiment_path_streams_live_events_after_the_snapshot(ws, alice):
    experiment, runs = await experiment_for(alice)
    socket = await ws(experiment_path(experiment), alice)
    snapshot = await socket.recv_type("snapshot")
    await produce(lifecycle.start_experiment, experiment=experiment, by=alice)
    await report_progress(runs[1], 45.0)
    events = await socket.events(3)
    assert [e["seq"] for e in events] == [snapshot["seq"] + 1, snapshot["seq"] + 2, snapshot["seq"] + 3]
    assert [e["event_type"] for e in events] == ["experiment_started", "agent_initialized", "agent_progress"]
    started = events[0]["data"]
    assert started["name"] == experiment.name
    assert started["total_agents"] == 2
    assert started["config"] == {}
    progress = events[2]
    assert progress["run_id"] == runs[1].public_id
    assert progress["data"]["progress_percent"] == 45.0
    assert progress["experiment_id"] == experiment.public_id
    assert progress["timestamp"].endswith("Z")
    assert isinstance(progress["id"], int)


# Subscriptions on /ws/research/ ----------------------------------------------------------


async def test_subscribe_then_unsubscribe_an_experiment(ws, alice):
    experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": experiment.public_id})
    reply = await socket.recv_type("subscribed")
    assert reply == {
        "type": "subscribed",
        "experiment_id": experiment.public_id,
        "seq": await current_seq(experiment.public_id),
        "recovered": True,
    }
    await report_progress(runs[0], 10.0)
    events = await socket.events(2)
    assert [e["seq"] for e in events] == [reply["seq"] + 1, reply["seq"] + 2]

    await socket.send({"type": "unsubscribe", "experiment_id": experiment.public_id})
    reply = await socket.recv_type("unsubscribed")
    assert reply["experiment_id"] == experiment.public_id
    await report_progress(runs[0], 20.0)
    assert await socket.silent(0.3)


async def test_nothing_is_streamed_on_the_multiplexed_socket_before_a_subscription(ws, alice):
    _experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await report_progress(runs[0], 10.0)
    assert await socket.silent(0.3)


async def test_run_filter_lets_only_that_runs_events_through(ws, alice):
    experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": experiment.public_id, "run_id": runs[1].public_id})
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 10.0)
    await report_progress(runs[1], 20.0)
    await report_progress(runs[0], 30.0)
    await report_progress(runs[1], 40.0)
    events = await socket.events(3)
    assert {e["run_id"] for e in events} == {runs[1].public_id}
    assert [e["event_type"] for e in events] == ["agent_initialized", "agent_progress", "agent_progress"]
    assert [e["data"]["progress_percent"] for e in events[1:]] == [20.0, 40.0]
    assert await socket.silent()


async def test_event_type_filter_lets_only_those_types_through(ws, alice):
    experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send(
        {
            "type": "subscribe",
            "experiment_id": experiment.public_id,
            "event_types": ["agent_progress", "experiment_stopped"],
        }
    )
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 10.0)
    await report_progress(runs[1], 20.0)
    await produce(lifecycle.stop_experiment, experiment=experiment, by=alice)
    events = await socket.events(3)
    assert [e["event_type"] for e in events] == ["agent_progress", "agent_progress", "experiment_stopped"]
    # The filtered-out events still count: seqs keep their places.
    assert events[-1]["seq"] == await current_seq(experiment.public_id)
    assert await socket.silent()


async def test_resubscribing_changes_the_filter_without_repeating_events(ws, alice):
    experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": experiment.public_id, "run_id": runs[0].public_id})
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 10.0)
    assert [e["event_type"] for e in await socket.events(2)] == ["agent_initialized", "agent_progress"]
    await socket.send({"type": "subscribe", "experiment_id": experiment.public_id})
    await socket.recv_type("subscribed")
    await report_progress(runs[1], 20.0)
    events = await socket.events(2)
    assert [e["run_id"] for e in events] == [runs[1].public_id] * 2
    assert await socket.silent()


async def test_subscribing_to_an_invisible_experiment_is_forbidden_and_the_socket_stays(ws, alice, bob):
    theirs, _ = await experiment_for(bob, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    for experiment_id in (theirs.public_id, "exp_doesNotExist000000000"):
        await socket.send({"type": "subscribe", "experiment_id": experiment_id})
        error = await socket.recv_type("error")
        assert error["code"] == "forbidden"
    await socket.send({"type": "ping"})
    await socket.recv_type("pong")


async def test_experiment_path_socket_may_subscribe_to_another_experiment(ws, alice):
    first, _ = await experiment_for(alice, started=True)
    second, runs = await experiment_for(alice, started=True)
    socket = await ws(experiment_path(first), alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": second.public_id})
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 5.0)
    events = await socket.events(2)
    assert {e["experiment_id"] for e in events} == {second.public_id}


async def test_global_stream_is_not_available_on_the_experiment_path(ws, alice):
    experiment, _ = await experiment_for(alice)
    socket = await ws(experiment_path(experiment), alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    assert (await socket.recv_type("error"))["code"] == "bad_request"


# The global stream -----------------------------------------------------------------------


async def test_global_stream_carries_only_experiments_the_caller_may_view(ws, alice, bob):
    mine, my_runs = await experiment_for(alice, started=True)
    shared, shared_runs = await experiment_for(bob, started=True, members={alice: "operator"})
    _hidden, hidden_runs = await experiment_for(bob, started=True)
    socket = await ws(GLOBAL, alice)
    snapshot = await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    reply = await socket.recv_type("subscribed")
    assert reply["experiment_id"] is None
    assert reply["recovered"] is True
    assert reply["seq"] == snapshot["last_event_id"]
    await report_progress(hidden_runs[0], 10.0)
    await report_progress(my_runs[0], 10.0)
    await report_progress(hidden_runs[1], 10.0)
    await report_progress(shared_runs[0], 10.0)
    events = await socket.events(4)
    assert [e["experiment_id"] for e in events] == [mine.public_id] * 2 + [shared.public_id] * 2
    assert all(e["id"] > reply["seq"] for e in events)
    assert await socket.silent()


async def test_global_stream_of_staff_carries_every_experiment(ws, alice, bob, staff):
    _a, alice_runs = await experiment_for(alice, started=True)
    _b, bob_runs = await experiment_for(bob, started=True)
    socket = await ws(GLOBAL, staff)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    await socket.recv_type("subscribed")
    await report_progress(alice_runs[0], 10.0)
    await report_progress(bob_runs[0], 10.0)
    events = await socket.events(4)
    assert len({e["experiment_id"] for e in events}) == 2


async def test_global_stream_with_filters(ws, alice):
    _experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None, "event_types": ["agent_initialized"]})
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 10.0)
    await report_progress(runs[1], 10.0)
    events = await socket.events(2)
    assert [e["event_type"] for e in events] == ["agent_initialized"] * 2
    assert await socket.silent()


async def test_new_experiments_of_the_caller_appear_on_the_global_stream(ws, alice, bob):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    await socket.recv_type("subscribed")
    await experiment_for(bob)
    experiment, _ = await experiment_for(alice)
    (created,) = await socket.events(1)
    assert created["event_type"] == "experiment_created"
    assert created["experiment_id"] == experiment.public_id
    assert created["seq"] == 1
    assert created["data"]["id"] == experiment.public_id
    assert await socket.silent()


async def test_unsubscribing_the_global_stream(ws, alice):
    _experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    await socket.recv_type("subscribed")
    await socket.send({"type": "unsubscribe", "experiment_id": None})
    assert (await socket.recv_type("unsubscribed"))["experiment_id"] is None
    await report_progress(runs[0], 10.0)
    assert await socket.silent(0.3)


async def test_experiment_and_global_subscriptions_together_send_each_event_once(ws, alice):
    experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    await socket.recv_type("subscribed")
    await socket.send({"type": "subscribe", "experiment_id": experiment.public_id})
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 10.0)
    events = await socket.events(2)
    assert len({e["seq"] for e in events}) == 2
    assert await socket.silent()
