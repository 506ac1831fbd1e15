"""Bad and abusive clients get an error or a close; every other socket carries on."""

import json

import pytest

from experiments import runtime_config
from tests.realtime.conftest import experiment_for, produce, report_progress

pytestmark = pytest.mark.django_db(transaction=True)

GLOBAL = "/ws/research/"
MAX_BYTES = 64 * 1024


async def watched_experiment(ws, owner):
    """A running experiment and a second, well-behaved socket following it."""
    experiment, runs = await experiment_for(owner, started=True)
    bystander = await ws(f"/ws/research/experiments/{experiment.public_id}/", owner)
    snapshot = await bystander.recv_type("snapshot")
    return experiment, runs, bystander, snapshot["seq"]


async def assert_still_served(bystander, run, after_seq: int) -> None:
    await report_progress(run, 42.0)
    events = await bystander.events(1 if after_seq > 3 else 2)
    assert events[-1]["seq"] > after_seq
    assert events[-1]["data"]["progress_percent"] == 42.0


async def assert_open(socket) -> None:
    await socket.send({"type": "ping", "id": "still-there"})
    assert await socket.recv() == {"type": "pong", "id": "still-there"}


async def test_ping_gets_pong_echoing_the_id(ws, alice):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}
    await socket.send({"type": "ping", "id": 7})
    assert await socket.recv() == {"type": "pong", "id": 7}


async def test_frame_over_64_kib_is_refused_and_harms_no_one(ws, alice):
    _experiment, runs, bystander, seq = await watched_experiment(ws, alice)
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    padding = "x" * MAX_BYTES
    await socket.send_text(json.dumps({"type": "ping", "padding": padding}))
    error = await socket.recv_type("error")
    assert error["code"] == "message_too_large"
    await assert_open(socket)
    await assert_still_served(bystander, runs[0], seq)


async def test_multibyte_text_counts_in_bytes(ws, alice):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    # 30,000 characters, 90,000 bytes in UTF-8.
    await socket.send_text(json.dumps({"type": "ping", "padding": "€" * 30_000}, ensure_ascii=False))
    assert (await socket.recv_type("error"))["code"] == "message_too_large"


async def test_frame_just_under_the_limit_is_read(ws, alice):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    frame = json.dumps({"type": "ping", "id": 1, "padding": ""})
    frame = frame.replace('"padding": ""', '"padding": "' + "x" * (MAX_BYTES - len(frame) - 10) + '"')
    assert len(frame.encode()) < MAX_BYTES
    await socket.send_text(frame)
    assert await socket.recv() == {"type": "pong", "id": 1}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ('{"type": "ping"', "invalid_json"),
        ("[1, 2, 3]", "bad_request"),
        ('"ping"', "bad_request"),
        ('{"no": "type"}', "bad_request"),
        ('{"type": 5}', "bad_request"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe"}', "bad_request"),
        ('{"type": "subscribe", "experiment_id": 12}', "bad_request"),
        ('{"type": "subscribe", "experiment_id": "run_abc"}', "bad_request"),
        ('{"type": "subscribe", "experiment_id": null, "event_types": ["nope"]}', "bad_request"),
        ('{"type": "subscribe", "experiment_id": null, "event_types": []}', "bad_request"),
        ('{"type": "subscribe", "experiment_id": null, "run_id": "exp_x"}', "bad_request"),
        ('{"type": "unsubscribe"}', "bad_request"),
        ('{"type": "ping", "id": {"nested": true}}', None),
    ],
)
async def test_malformed_or_unknown_messages_get_an_error_and_the_socket_stays(ws, alice, frame, code):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send_text(frame)
    reply = await socket.recv()
    if code is None:
        assert reply == {"type": "pong"}  # an id that cannot be echoed is left out
    else:
        assert reply["type"] == "error"
        assert reply["code"] == code
        assert reply["detail"]
    await assert_open(socket)


async def test_binary_frames_are_refused_with_an_error(ws, alice):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.communicator.send_to(bytes_data=b'{"type": "ping"}')
    assert (await socket.recv_type("error"))["code"] == "bad_request"
    await assert_open(socket)


async def test_error_echoes_the_message_id(ws, alice):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await socket.send({"type": "subscribe", "experiment_id": "exp_doesNotExist", "id": "req-9"})
    reply = await socket.recv_type("error")
    assert reply["code"] == "forbidden"


async def test_flood_is_closed_4408_and_others_carry_on(ws, alice):
    await produce(runtime_config.update_config, changes={"ws_messages_per_second": 2}, by=alice)
    _experiment, runs, bystander, seq = await watched_experiment(ws, alice)
    flooder = await ws(GLOBAL, alice)
    await flooder.recv_type("snapshot")
    for _ in range(30):
        await flooder.send({"type": "ping"})
    messages, code = await flooder.messages_until_close()
    assert code == 4408
    # The burst allowance (4 × the rate) was answered before the cut.
    assert [m["type"] for m in messages] == ["pong"] * 8
    await assert_open(bystander)
    await assert_still_served(bystander, runs[0], seq)


async def test_a_lowered_message_rate_applies_to_open_sockets_at_once(ws, alice, staff):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    await produce(runtime_config.update_config, changes={"ws_messages_per_second": 1}, by=staff)
    announced = await socket.recv()
    assert announced["type"] == "event"
    assert announced["event_type"] == "config_updated"
    assert announced["experiment_id"] is None
    assert announced["seq"] is None
    assert announced["data"]["config"]["ws_messages_per_second"] == 1
    for _ in range(10):
        await socket.send({"type": "ping"})
    messages, code = await socket.messages_until_close()
    assert code == 4408
    assert len(messages) <= 4


async def test_messages_within_the_rate_are_all_answered(ws, alice):
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    for i in range(100):  # the default burst is 4 × 50
        await socket.send({"type": "ping", "id": i})
    for i in range(100):
        assert await socket.recv() == {"type": "pong", "id": i}


async def test_heartbeat_after_silence(ws, alice, settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.5}
    socket = await ws(GLOBAL, alice)
    await socket.recv_type("snapshot")
    heartbeat = await socket.recv(timeout=3)
    assert set(heartbeat) == {"type", "ts"}
    assert heartbeat["type"] == "heartbeat"
    assert heartbeat["ts"].endswith("Z")
    # And again after the next stretch of silence.
    assert (await socket.recv(timeout=3))["type"] == "heartbeat"


async def test_heartbeat_reaches_the_experiment_path_too(ws, alice, settings):
    settings.REALTIME = {**settings.REALTIME, "HEARTBEAT_SECONDS": 0.5}
    experiment, _ = await experiment_for(alice)
    socket = await ws(f"/ws/research/experiments/{experiment.public_id}/", alice)
    await socket.recv_type("snapshot")
    assert (await socket.recv(timeout=3))["type"] == "heartbeat"
