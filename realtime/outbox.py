"""A socket's way out: flow control and a bounded queue for clients that read slowly.

Under daphne, writes go into Twisted's transport buffer, which grows without bound when
the client stops reading. The outbox registers itself as the transport's push producer,
so Twisted tells it when the buffer is full (``pauseProducing``) and when it drained
(``resumeProducing``). While paused, messages wait in a queue of at most
``REALTIME["MAX_OUTGOING_QUEUE"]``; one more closes the socket with 4409 ("too slow,
resume with since"). The queue holds references to event texts that all sockets share,
so it costs a few bytes a message.

When the ASGI ``send`` is daphne's own, sends also take a fast path straight to the
WebSocket protocol, skipping a coroutine per message; each event is framed once for all
sockets (autobahn's prepared messages) and written to each transport.
"""

import asyncio
import functools
import logging
import time
from collections import deque

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4409
# A replay waits this long for a stuck reader to make room before giving up on it.
STALL_SECONDS = 30.0


def daphne_protocol(send):
    """The daphne WebSocket protocol behind an ASGI ``send``, or None under other servers."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if hasattr(protocol, "sendPreparedMessage") and hasattr(protocol, "transport"):
        return protocol
    return None


class Outbox:
    def __init__(self, send, *, max_queue: int, on_overflow):
        self._send = send
        self._max_queue = max_queue
        self._on_overflow = on_overflow
        self._queue: deque = deque()
        self._paused = False
        self._room: asyncio.Future | None = None
        self.closed = False
        self.sent = 0
        self.last_sent = time.monotonic()
        self._protocol = daphne_protocol(send)
        if self._protocol is not None:
            # A frame over daphne's --websocket-max-frame-size then gets a close 1009 the
            # client can read, instead of a dropped connection (autobahn's default).
            self._protocol.failByDrop = False
            self._register_producer()

    # Twisted IPushProducer -------------------------------------------------------------

    def _register_producer(self) -> None:
        transport = getattr(self._protocol, "transport", None)
        if transport is None:
            self._protocol = None
            return
        try:
            if getattr(transport, "producer", None) is not None:
                # The HTTP channel that upgraded to WebSocket is still registered.
                transport.unregisterProducer()
            transport.registerProducer(self, True)
        except Exception:  # pragma: no cover - an unusual transport: no fast path
            logger.debug("could not register the outbox as producer", exc_info=True)
            self._protocol = None

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        self._flush()

    def stopProducing(self):
        self.closed = True
        self._queue.clear()
        self._wake()

    # Sending ---------------------------------------------------------------------------

    @property
    def fast(self) -> bool:
        return self._protocol is not None

    def _protocol_open(self) -> bool:
        protocol = self._protocol
        return protocol.state == protocol.STATE_OPEN

    def send_now(self, text: str, prepared=None) -> bool:
        """Send synchronously on the fast path; False if the caller must ``await send()``."""
        if self.closed:
            return True
        if self._protocol is None:
            return False
        if self._paused or self._queue:
            self._enqueue((text, prepared))
            return True
        if not self._protocol_open():
            return True
        if prepared is not None:
            self._protocol.sendPreparedMessage(prepared)
        else:
            self._protocol.sendMessage(text.encode("utf-8"), False)
        self.sent += 1
        self.last_sent = time.monotonic()
        return True

    async def send(self, text: str, prepared=None) -> None:
        if self.send_now(text, prepared):
            return
        await self._send({"type": "websocket.send", "text": text})
        self.sent += 1
        self.last_sent = time.monotonic()

    @property
    def max_queue(self) -> int:
        return self._max_queue

    def overflow(self) -> None:
        """Give up on a client too slow to read: drop what waits, close it (once)."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._wake()
        self._on_overflow()

    def _enqueue(self, item) -> None:
        if len(self._queue) >= self._max_queue:
            self.overflow()
            return
        self._queue.append(item)

    def _flush(self) -> None:
        while self._queue and not self._paused and not self.closed:
            text, prepared = self._queue.popleft()
            if not self._protocol_open():
                self._queue.clear()
                break
            if prepared is not None:
                self._protocol.sendPreparedMessage(prepared)
            else:
                self._protocol.sendMessage(text.encode("utf-8"), False)
            self.sent += 1
            self.last_sent = time.monotonic()
        if self._has_room():
            self._wake()

    def _has_room(self) -> bool:
        return len(self._queue) <= self._max_queue // 2

    def _wake(self) -> None:
        room, self._room = self._room, None
        if room is not None and not room.done():
            room.set_result(None)

    async def wait_for_room(self, timeout: float = STALL_SECONDS) -> None:
        """Wait until at most half the queue is in use (a replay paces itself by this).

        A reader that makes no room within ``timeout`` is too slow: it is closed (4409).
        """
        if self.closed or self._has_room():
            return
        if self._room is None:
            self._room = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._room), timeout)
        except TimeoutError:
            self.overflow()

    def give_slow_client_time(self, seconds: float) -> None:
        """Let a slow client read what is buffered, and the close, before the drop."""
        if self._protocol is not None:
            self._protocol.closeHandshakeTimeout = seconds

    def detach(self) -> None:
        """Stop producing for the transport (the socket is going away)."""
        self.closed = True
        self._queue.clear()
        self._wake()
        protocol = self._protocol
        self._protocol = None
        if protocol is not None:
            transport = getattr(protocol, "transport", None)
            if transport is not None and getattr(transport, "producer", None) is self:
                try:
                    transport.unregisterProducer()
                except Exception:  # pragma: no cover - the transport is already gone
                    logger.debug("unregisterProducer failed", exc_info=True)

    @property
    def queued(self) -> int:
        return len(self._queue)
