"""The outbox under daphne: flow control, a bounded queue, and the close of a slow reader.

daphne hands consumers ``functools.partial(server.handle_reply, protocol)`` as ``send``;
the fake protocol below implements the little of autobahn's and Twisted's interface the
outbox uses (``sendPreparedMessage``, ``sendMessage``, ``state``/``STATE_OPEN``, and a
transport with ``registerProducer``).
"""

import asyncio
import functools

from realtime.outbox import Outbox


class FakeTransport:
    def __init__(self):
        self.producer = None
        self.streaming = None
        self.unregistered = 0

    def registerProducer(self, producer, streaming):
        assert self.producer is None, "Twisted refuses a second producer"
        self.producer, self.streaming = producer, streaming

    def unregisterProducer(self):
        self.producer = None
        self.unregistered += 1


class FakeProtocol:
    STATE_OPEN = 1
    STATE_CLOSING = 2

    def __init__(self):
        self.state = self.STATE_OPEN
        self.transport = FakeTransport()
        self.transport.producer = object()  # the HTTP channel that upgraded
        self.frames: list = []
        self.closeHandshakeTimeout = 1
        self.failByDrop = True  # autobahn's default

    def sendPreparedMessage(self, prepared):
        self.frames.append(("prepared", prepared))

    def sendMessage(self, payload, isBinary):
        assert isBinary is False
        self.frames.append(("text", payload.decode()))


async def handle_reply(protocol, message):  # daphne's signature: the protocol comes first
    raise AssertionError("the fast path never goes through the ASGI send")


class Overflow:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def daphne_outbox(max_queue: int = 5):
    protocol = FakeProtocol()
    overflow = Overflow()
    outbox = Outbox(functools.partial(handle_reply, protocol), max_queue=max_queue, on_overflow=overflow)
    return outbox, protocol, overflow


def test_it_registers_as_the_transports_streaming_producer():
    outbox, protocol, _ = daphne_outbox()
    assert outbox.fast
    assert protocol.transport.producer is outbox
    assert protocol.transport.streaming is True


def test_an_oversized_frame_gets_a_close_1009_not_a_dropped_connection():
    _, protocol, _ = daphne_outbox()
    assert protocol.failByDrop is False


def test_it_writes_at_once_while_the_client_reads():
    outbox, protocol, _ = daphne_outbox()
    assert outbox.send_now('{"a":1}')
    assert outbox.send_now("ignored text", prepared="FRAME")
    assert protocol.frames == [("text", '{"a":1}'), ("prepared", "FRAME")]
    assert outbox.queued == 0
    assert outbox.sent == 2


def test_paused_messages_wait_and_go_out_in_order_on_resume():
    outbox, protocol, overflow = daphne_outbox()
    outbox.pauseProducing()
    for i in range(4):
        outbox.send_now(str(i))
    assert protocol.frames == []
    assert outbox.queued == 4
    outbox.resumeProducing()
    assert protocol.frames == [("text", str(i)) for i in range(4)]
    assert outbox.queued == 0
    # Sent after the resume, behind nothing.
    outbox.send_now("4")
    assert protocol.frames[-1] == ("text", "4")
    assert overflow.calls == 0


def test_the_queue_never_grows_past_its_bound_and_overflow_closes_once():
    outbox, protocol, overflow = daphne_outbox(max_queue=5)
    outbox.pauseProducing()
    sizes = []
    for i in range(50):
        outbox.send_now(str(i))
        sizes.append(outbox.queued)
    assert max(sizes) == 5
    assert overflow.calls == 1
    assert outbox.closed
    assert outbox.queued == 0
    outbox.resumeProducing()
    assert protocol.frames == []  # nothing of a closed socket is written late


def test_messages_behind_a_queue_keep_their_order_when_the_buffer_fills_again():
    outbox, protocol, _ = daphne_outbox(max_queue=10)
    written = protocol.sendMessage

    def write_and_fill(payload, isBinary):
        written(payload, isBinary)
        if len(protocol.frames) == 2:
            outbox.pauseProducing()  # Twisted: the transport buffer is full again

    protocol.sendMessage = write_and_fill
    outbox.pauseProducing()
    for text in "abcd":
        outbox.send_now(text)
    outbox.resumeProducing()
    assert [text for _, text in protocol.frames] == ["a", "b"]
    outbox.send_now("e")  # must wait behind "c" and "d"
    outbox.resumeProducing()
    assert [text for _, text in protocol.frames] == ["a", "b", "c", "d", "e"]


def test_nothing_is_written_once_the_protocol_is_closing():
    outbox, protocol, _ = daphne_outbox()
    protocol.state = protocol.STATE_CLOSING
    assert outbox.send_now("late")
    assert protocol.frames == []


def test_detach_hands_the_transport_back():
    outbox, protocol, _ = daphne_outbox()
    outbox.detach()
    assert protocol.transport.producer is None
    assert outbox.closed
    assert outbox.send_now("after") is True
    assert protocol.frames == []


def test_stop_producing_drops_what_waits():
    outbox, protocol, _ = daphne_outbox()
    outbox.pauseProducing()
    outbox.send_now("x")
    outbox.stopProducing()
    outbox.resumeProducing()
    assert protocol.frames == []


def test_a_slow_client_gets_time_to_read_its_close():
    outbox, protocol, _ = daphne_outbox()
    outbox.give_slow_client_time(10.0)
    assert protocol.closeHandshakeTimeout == 10.0


async def test_wait_for_room_returns_once_the_reader_catches_up():
    outbox, protocol, overflow = daphne_outbox(max_queue=10)
    outbox.pauseProducing()
    for i in range(8):
        outbox.send_now(str(i))
    waiter = asyncio.create_task(outbox.wait_for_room(timeout=5))
    await asyncio.sleep(0)
    assert not waiter.done()
    outbox.resumeProducing()
    await asyncio.wait_for(waiter, 1)
    assert len(protocol.frames) == 8
    assert overflow.calls == 0


async def test_wait_for_room_gives_up_on_a_stuck_reader():
    outbox, _, overflow = daphne_outbox(max_queue=10)
    outbox.pauseProducing()
    for i in range(8):
        outbox.send_now(str(i))
    await outbox.wait_for_room(timeout=0.05)
    assert overflow.calls == 1
    assert outbox.closed


async def test_wait_for_room_does_not_wait_with_room_left():
    outbox, _, _ = daphne_outbox(max_queue=10)
    outbox.pauseProducing()
    for i in range(5):
        outbox.send_now(str(i))
    await asyncio.wait_for(outbox.wait_for_room(timeout=5), 0.1)


async def test_under_another_server_it_awaits_the_asgi_send():
    sent = []

    async def send(message):
        sent.append(message)

    outbox = Outbox(send, max_queue=5, on_overflow=Overflow())
    assert not outbox.fast
    assert outbox.send_now("x") is False
    await outbox.send('{"type":"pong"}')
    assert sent == [{"type": "websocket.send", "text": '{"type":"pong"}'}]
