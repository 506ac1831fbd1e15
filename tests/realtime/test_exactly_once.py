"""Every socket gets every event once and in order, through a layer that loses, repeats and
reorders messages; what the layer dropped with nothing after it still arrives (the sweep)."""

import asyncio
import time
from collections import defaultdict

import pytest
from channels.layers import channel_layers, get_channel_layer

from experiments import lifecycle, runtime_config
from tests.realtime.conftest import current_seq, experiment_for, produce, report_progress

pytestmark = pytest.mark.django_db(transaction=True)

GLOBAL = "/ws/research/"
SWEEP_SECONDS = 0.3


@pytest.fixture
def lossy_layer(settings, request):
    """The flaky layer as the default layer, and a sweep every 0.3 s."""
    seed = getattr(request, "param", 1)
    settings.REALTIME = {**settings.REALTIME, "SWEEP_SECONDS": SWEEP_SECONDS}
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "tests.realtime.flaky_layer.FlakyChannelLayer",
            "CONFIG": {"capacity": 10_000, "seed": seed, "drop": 0.1, "duplicate": 0.1, "delay": 0.15},
        }
    }
    channel_layers.backends.clear()
    layer = get_channel_layer()
    yield layer
    layer.cancel_late()
    channel_layers.backends.clear()


async def open_sockets(ws, experiments, owner, viewer):
    """Sockets of every kind, each with the seq it expects next per experiment."""
    first, second = experiments
    sockets = {}
    for name, path, user, since in (
        ("path", f"/ws/research/experiments/{first.public_id}/", owner, None),
        ("path since 0", f"/ws/research/experiments/{first.public_id}/?since=0", owner, 0),
        ("viewer path", f"/ws/research/experiments/{second.public_id}/", viewer, None),
    ):
        socket = await ws(path, user)
        snapshot = await socket.recv_type("snapshot")
        experiment_id = snapshot["experiment"]["id"]
        sockets[name] = (socket, {experiment_id: (since if since is not None else snapshot["seq"]) + 1})
    multiplexed = await ws(GLOBAL, owner)
    await multiplexed.recv_type("snapshot")
    expect = {}
    for experiment in experiments:
        await multiplexed.send({"type": "subscribe", "experiment_id": experiment.public_id})
        reply = await multiplexed.recv_type("subscribed")
        expect[experiment.public_id] = reply["seq"] + 1
    sockets["subscribed to both"] = (multiplexed, expect)
    for name, user in (("global", owner), ("viewer global", viewer)):
        socket = await ws(GLOBAL, user)
        await socket.recv_type("snapshot")
        await socket.send({"type": "subscribe", "experiment_id": None})
        await socket.recv_type("subscribed")
        visible = experiments if user == owner else [second]
        sockets[name] = (socket, {e.public_id: await current_seq(e.public_id) + 1 for e in visible})
    return sockets


async def assert_exact(socket, expect: dict, final: dict, timeout: float = 5.0) -> None:
    """The socket delivers, per experiment, seq ``expect[e]`` … ``final[e]`` once each, in order."""
    seen = defaultdict(list)
    remaining = {e for e in expect if final[e] >= expect[e]}
    while remaining:
        message = await socket.recv(timeout)
        if message["type"] == "heartbeat":
            continue
        assert message["type"] == "event", message
        experiment_id = message["experiment_id"]
        assert experiment_id in expect, message
        seen[experiment_id].append(message["seq"])
        if message["seq"] >= final[experiment_id]:
            remaining.discard(experiment_id)
    for experiment_id, first in expect.items():
        assert seen[experiment_id] == list(range(first, final[experiment_id] + 1)), experiment_id


async def assert_quiet(*sockets) -> None:
    """Nothing more (no late duplicate) on any socket for a few sweeps."""
    results = await asyncio.gather(*(socket.silent(SWEEP_SECONDS * 3) for socket in sockets))
    assert all(results)


@pytest.mark.parametrize("lossy_layer", [1, 2], indirect=True)
async def test_every_socket_gets_every_event_once_in_order_through_a_lossy_layer(ws, lossy_layer, alice, bob):
    first, first_runs = await experiment_for(alice, started=True, name="first")
    second, second_runs = await experiment_for(alice, started=True, name="second", members={bob: "viewer"})
    sockets = await open_sockets(ws, (first, second), alice, bob)
    runs = [*first_runs, *second_runs]
    for i in range(160):
        await report_progress(runs[i % len(runs)], float(i % 100))
    await lossy_layer.settle()
    final = {e.public_id: await current_seq(e.public_id) for e in (first, second)}
    assert final == {first.public_id: 84, second.public_id: 84}
    stats = lossy_layer.stats
    assert stats["dropped"] > 15
    assert stats["duplicated"] > 15
    assert stats["delayed"] > 15
    for _name, (socket, expect) in sockets.items():
        await assert_exact(socket, expect, final)
    await assert_quiet(*(socket for socket, _ in sockets.values()))


async def test_a_trailing_dropped_event_arrives_through_the_sweep(ws, lossy_layer, alice, bob):
    first, first_runs = await experiment_for(alice, started=True)
    second, _ = await experiment_for(alice, started=True, members={bob: "viewer"})
    sockets = await open_sockets(ws, (first, second), alice, bob)
    for i in range(10):
        await report_progress(first_runs[i % 2], float(i))
    lossy_layer.blackhole = True
    started = time.monotonic()
    await report_progress(first_runs[0], 99.0)
    final = {e.public_id: await current_seq(e.public_id) for e in (first, second)}
    for _name, (socket, expect) in sockets.items():
        await assert_exact(socket, expect, final)
    # Two sweeps see it missing, the second delivers it: well within a few seconds.
    assert time.monotonic() - started < 3.0
    await assert_quiet(*(socket for socket, _ in sockets.values()))


async def test_a_dropped_first_event_of_a_new_experiment_reaches_the_global_stream(ws, lossy_layer, alice):
    busy, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    await socket.recv_type("subscribed")
    await report_progress(runs[0], 1.0)
    lossy_layer.drop = lossy_layer.duplicate = lossy_layer.delay = 0.0
    lossy_layer.drop_next = 2  # both copies (experiment group and global group)
    fresh, _ = await experiment_for(alice)  # experiment_created, dropped
    for i in range(5):  # while later events of another experiment flow normally
        await report_progress(runs[1], float(i))
    expect = {busy.public_id: 3, fresh.public_id: 1}
    final = {busy.public_id: await current_seq(busy.public_id), fresh.public_id: 1}
    await assert_exact(socket, expect, final)
    await assert_quiet(socket)


async def test_a_dropped_system_event_reaches_multiplexed_sockets(ws, lossy_layer, alice, staff):
    _experiment, runs = await experiment_for(alice, started=True)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": None})
    await socket.recv_type("subscribed")
    lossy_layer.drop = lossy_layer.duplicate = lossy_layer.delay = 0.0
    lossy_layer.drop_next = 1
    await produce(runtime_config.update_config, changes={"ws_messages_per_second": 40}, by=staff)
    for i in range(3):
        await report_progress(runs[0], float(i))
    received = [await socket.recv() for _ in range(5)]
    config = [m for m in received if m["event_type"] == "config_updated"]
    assert len(config) == 1
    assert config[0]["data"]["config"]["ws_messages_per_second"] == 40
    assert [m["seq"] for m in received if m["experiment_id"]] == [3, 4, 5, 6]
    await assert_quiet(socket)


async def test_experiment_deleted_arrives_before_the_close_even_when_dropped(ws, lossy_layer, alice):
    experiment, _ = await experiment_for(alice)
    socket = await ws(f"/ws/research/experiments/{experiment.public_id}/", alice)
    await socket.recv_type("snapshot")
    lossy_layer.drop = lossy_layer.duplicate = lossy_layer.delay = 0.0
    lossy_layer.drop_next = 2
    await produce(lifecycle.delete_experiment, experiment=experiment, by=alice)
    messages, code = await socket.messages_until_close()
    assert code == 4404
    assert [m.get("event_type", m["type"]) for m in messages] == ["experiment_deleted", "error"]
