"""Resuming: ``?since=`` on the experiment path and ``since`` in ``subscribe``.

The replay table: since = 0, = current, in the middle, pruned by retention, from the
future, and not a number; then replay and live joining while events are committed.
"""

import asyncio

import pytest
from channels.db import database_sync_to_async

from realtime.models import Event
from realtime.retention import prune_events
from tests.realtime.conftest import current_seq, experiment_for, report_progress, stored_events

pytestmark = pytest.mark.django_db(transaction=True)

GLOBAL = "/ws/research/"


def experiment_path(experiment, since=None) -> str:
    query = "" if since is None else f"?since={since}"
    return f"/ws/research/experiments/{experiment.public_id}/{query}"


async def experiment_with_history(owner, reports: int = 4):
    """A running experiment with 2 + 1 + ``reports`` events (created, started, init, progress…)."""
    experiment, runs = await experiment_for(owner, started=True)
    for i in range(reports):
        await report_progress(runs[0], float(i + 1))
    return experiment, runs


@database_sync_to_async
def prune_through(experiment_id: str, seq: int) -> int:
    """Delete (through retention) the experiment's events up to ``seq``."""
    cutoff = Event.objects.get(experiment_id=experiment_id, seq=seq + 1).timestamp
    return prune_events(older_than_days=0, now=cutoff)


async def subscribe(socket, experiment_id, **fields) -> dict:
    await socket.send({"type": "subscribe", "experiment_id": experiment_id, **fields})
    return await socket.recv()


# ?since= on the experiment path ------------------------------------------------------------


@pytest.mark.parametrize(("since", "first_replayed"), [(0, 1), (3, 4)])
async def test_since_replays_the_stored_events_after_it(ws, alice, since, first_replayed):
    experiment, runs = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    socket = await ws(experiment_path(experiment, since), alice)
    snapshot = await socket.recv_type("snapshot")
    assert snapshot["seq"] == current
    replayed = await socket.events(current - since)
    assert [e["seq"] for e in replayed] == list(range(first_replayed, current + 1))
    assert replayed[0]["event_type"] == ("experiment_created" if since == 0 else "agent_progress")
    # Then live, seamlessly.
    await report_progress(runs[1], 50.0)
    live = await socket.events(2)
    assert [e["seq"] for e in live] == [current + 1, current + 2]
    assert await socket.silent()


async def test_since_current_replays_nothing_then_goes_live(ws, alice):
    experiment, runs = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    socket = await ws(experiment_path(experiment, current), alice)
    await socket.recv_type("snapshot")
    assert await socket.silent()
    await report_progress(runs[0], 99.0)
    (event,) = await socket.events(1)
    assert event["seq"] == current + 1


async def test_since_before_pruned_events_gives_recovered_false_and_no_partial_replay(ws, alice):
    experiment, runs = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    assert await prune_through(experiment.public_id, 3) == 3
    socket = await ws(experiment_path(experiment, 2), alice)
    snapshot = await socket.recv_type("snapshot")
    reply = await socket.recv_type("subscribed")
    assert reply["recovered"] is False
    assert reply["experiment_id"] == experiment.public_id
    assert reply["seq"] == current
    assert reply["snapshot"]["experiment"] == snapshot["experiment"]
    assert reply["snapshot"]["seq"] == current
    assert await socket.silent()
    await report_progress(runs[0], 77.0)
    assert [e["seq"] for e in await socket.events(1)] == [current + 1]


async def test_since_at_the_pruned_boundary_still_recovers(ws, alice):
    experiment, _ = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    await prune_through(experiment.public_id, 3)
    socket = await ws(experiment_path(experiment, 3), alice)
    await socket.recv_type("snapshot")
    replayed = await socket.events(current - 3)
    assert [e["seq"] for e in replayed] == list(range(4, current + 1))


async def test_since_from_the_future_gives_recovered_false(ws, alice):
    experiment, _ = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    socket = await ws(experiment_path(experiment, current + 50), alice)
    await socket.recv_type("snapshot")
    reply = await socket.recv_type("subscribed")
    assert reply["recovered"] is False
    assert reply["snapshot"]["seq"] == current
    assert await socket.silent()


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", ""])
async def test_since_not_a_number_is_an_error_and_the_socket_stays_live(ws, alice, since):
    experiment, runs = await experiment_with_history(alice, reports=1)
    current = await current_seq(experiment.public_id)
    socket = await ws(experiment_path(experiment, since), alice)
    await socket.recv_type("snapshot")
    error = await socket.recv_type("error")
    assert error["code"] == "bad_request"
    await report_progress(runs[0], 60.0)
    assert [e["seq"] for e in await socket.events(1)] == [current + 1]


# since in subscribe ------------------------------------------------------------------------


@pytest.mark.parametrize("since", [0, 2, "current"])
async def test_subscribe_since_replays_after_it(ws, alice, since):
    experiment, runs = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    since = current if since == "current" else since
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    reply = await subscribe(socket, experiment.public_id, since=since)
    assert reply == {"type": "subscribed", "experiment_id": experiment.public_id, "seq": current, "recovered": True}
    if since < current:
        replayed = await socket.events(current - since)
        assert [e["seq"] for e in replayed] == list(range(since + 1, current + 1))
    await report_progress(runs[1], 1.0)
    assert [e["seq"] for e in await socket.events(2)] == [current + 1, current + 2]
    assert await socket.silent()


async def test_subscribe_since_with_a_filter_replays_only_matching_events(ws, alice):
    experiment, runs = await experiment_for(alice, started=True)
    await report_progress(runs[0], 1.0)
    await report_progress(runs[1], 2.0)
    await report_progress(runs[0], 3.0)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    reply = await subscribe(
        socket, experiment.public_id, since=0, run_id=runs[1].public_id, event_types=["agent_progress"]
    )
    assert reply["recovered"] is True
    (replayed,) = await socket.events(1)
    assert replayed["run_id"] == runs[1].public_id
    assert replayed["data"]["progress_percent"] == 2.0
    assert await socket.silent()


async def test_subscribe_since_pruned_gives_recovered_false_with_a_fresh_snapshot(ws, alice):
    experiment, runs = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    await prune_through(experiment.public_id, 4)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    reply = await subscribe(socket, experiment.public_id, since=1)
    assert reply["recovered"] is False
    assert reply["seq"] == current
    assert reply["snapshot"]["type"] == "snapshot"
    assert reply["snapshot"]["experiment"]["id"] == experiment.public_id
    assert reply["snapshot"]["seq"] == current
    assert [run["id"] for run in reply["snapshot"]["runs"]] == [run.public_id for run in runs]
    assert await socket.silent()
    await report_progress(runs[0], 50.0)
    assert [e["seq"] for e in await socket.events(1)] == [current + 1]


async def test_subscribe_since_from_the_future_gives_recovered_false(ws, alice):
    experiment, _ = await experiment_with_history(alice)
    current = await current_seq(experiment.public_id)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    reply = await subscribe(socket, experiment.public_id, since=current + 1)
    assert reply["recovered"] is False
    assert reply["snapshot"]["seq"] == current
    assert await socket.silent()


@pytest.mark.parametrize("since", ["3", -1, 1.5, True, [1]])
async def test_subscribe_since_not_a_number_is_an_error_and_the_socket_stays(ws, alice, since):
    experiment, _ = await experiment_with_history(alice, reports=1)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    reply = await subscribe(socket, experiment.public_id, since=since, id="s1")
    assert reply["type"] == "error"
    assert reply["code"] == "bad_request"
    assert reply["id"] == "s1"
    # Not subscribed by the failed request, and still open.
    reply = await subscribe(socket, experiment.public_id)
    assert reply["type"] == "subscribed"


# The global stream's since is an event id --------------------------------------------------


async def test_global_since_replays_visible_events_after_that_id(ws, alice, bob):
    mine, my_runs = await experiment_for(alice, started=True)
    _theirs, their_runs = await experiment_for(bob, started=True)
    since = (await stored_events())[-1]["id"]
    await report_progress(my_runs[0], 1.0)
    await report_progress(their_runs[0], 1.0)
    await report_progress(my_runs[1], 1.0)
    socket = await ws(GLOBAL, alice)
    snapshot = await socket.recv_type("snapshot")
    reply = await subscribe(socket, None, since=since)
    assert reply["recovered"] is True
    assert reply["seq"] == snapshot["last_event_id"]
    replayed = await socket.events(4)
    assert {e["experiment_id"] for e in replayed} == {mine.public_id}
    assert [e["seq"] for e in replayed] == [3, 4, 5, 6]
    assert all(e["id"] > since for e in replayed)
    await report_progress(my_runs[0], 2.0)
    assert [e["seq"] for e in await socket.events(1)] == [7]
    assert await socket.silent()


async def test_global_since_pruned_gives_recovered_false(ws, alice):
    experiment, _ = await experiment_with_history(alice)
    await prune_through(experiment.public_id, 3)
    socket = await ws(GLOBAL, alice)
    snapshot = await socket.recv_type("snapshot")
    reply = await subscribe(socket, None, since=1)
    assert reply["recovered"] is False
    assert reply["seq"] == snapshot["last_event_id"]
    assert reply["snapshot"]["type"] == "snapshot"
    assert reply["snapshot"]["last_event_id"] == snapshot["last_event_id"]
    assert await socket.silent()


async def test_global_since_from_the_future_gives_recovered_false(ws, alice):
    await experiment_with_history(alice, reports=1)
    socket = await ws(GLOBAL, alice)
    snapshot = await socket.recv_type("snapshot")
    reply = await subscribe(socket, None, since=snapshot["last_event_id"] + 10)
    assert reply["recovered"] is False


# Replay and live join while events are being committed -------------------------------------


@pytest.mark.parametrize("path", ["experiment", "subscribe", "global"])
async def test_replay_joins_live_without_gap_or_duplicate_under_concurrent_commits(ws, alice, path):
    experiment, runs = await experiment_for(alice, started=True)
    await report_progress(runs[0], 0.0)  # seq 4; the run is running from here on
    total = 80
    committed = asyncio.Event()

    async def producer():
        for i in range(total):
            await report_progress(runs[i % 2], float(i % 100))
            if i == 10:
                committed.set()

    task = asyncio.create_task(producer())
    await committed.wait()
    since = 2  # a seq; for the global stream, the id of the event with that seq
    if path == "experiment":
        socket = await ws(experiment_path(experiment, since), alice)
        await socket.recv_type("snapshot")
    else:
        socket = await ws(GLOBAL, alice)
        await socket.recv_type("snapshot")
        if path == "subscribe":
            reply = await subscribe(socket, experiment.public_id, since=since)
        else:
            events = await stored_events(experiment.public_id)
            reply = await subscribe(socket, None, since=events[since - 1]["id"])
        assert reply["recovered"] is True
    await task
    final = await current_seq(experiment.public_id)
    assert final == 4 + total + 1  # one agent_initialized for the second run
    first = since + 1
    received = await socket.events(final - since, timeout=10)
    assert [e["seq"] for e in received] == list(range(first, final + 1))
    assert await socket.silent()
