"""Metric points and log lines, buffered and sent in batches by one background thread.

A batch is cut when a full one is waiting (1,000 points or lines, or about 512 KiB of log
text), when ``flush_interval`` has passed, or when someone flushes. A batch keeps its
``Idempotency-Key`` until the server has answered it: a batch whose every retry failed
(the server was down) is sent again later with the same key, so it is stored once even
if one of the lost tries had in fact reached the server.
"""

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.client.http import Api, AuthError, ClientError, Conflict, Unreachable, new_key

logger = logging.getLogger("research_engine.client")

MAX_ITEMS_PER_BATCH = 1000
MAX_LOG_BYTES_PER_BATCH = 512 * 1024
# When this many items wait (the server is unreachable), adding more blocks the caller.
MAX_BUFFERED = 100_000


@dataclass
class _Batch:
    kind: str  # "metrics" | "logs"
    items: list
    key: str = field(default_factory=new_key)

    def body(self) -> dict:
        return {"points" if self.kind == "metrics" else "lines": self.items}


class Batcher:
    """Owns the buffers and the sender thread; ``send`` errors decide what happens next.

    ``on_conflict(error)`` is called when the server answers 409 (returns True if the
    run is over: the buffers are then dropped) and ``on_auth_error(error)`` on a 401.
    """

    def __init__(
        self,
        api_factory: Callable[[], Api],
        *,
        flush_interval: float,
        on_conflict: Callable[[Conflict], bool],
        on_auth_error: Callable[[AuthError], None],
        max_buffered: int = MAX_BUFFERED,
    ):
        self._api_factory = api_factory
        self._flush_interval = flush_interval
        self._on_conflict = on_conflict
        self._on_auth_error = on_auth_error
        self._max_buffered = max_buffered
        self._cond = threading.Condition()
        self._points: deque = deque()
        self._lines: deque = deque()
        self._retry: _Batch | None = None  # a batch the server has not answered yet
        self._added = 0  # items ever added
        self._done = 0  # items sent, refused or dropped
        self._flush_wanted = False
        self._closing = False
        self._dropped = False
        self._next_send = 0.0
        self._paused_until = 0.0
        self.last_error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="research-engine-sender", daemon=True)
        self._thread.start()

    # Called by the agent's threads ---------------------------------------------------------

    def add(self, kind: str, items: list) -> None:
        with self._cond:
            if self._dropped or self._closing:
                return
            while self._pending() >= self._max_buffered and not (self._dropped or self._closing):
                self._cond.wait(1.0)
            (self._points if kind == "metrics" else self._lines).extend(items)
            self._added += len(items)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything added so far; True when it was all answered within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._added
            self._flush_wanted = True
            self._cond.notify_all()
            while self._done < target and not self._dropped:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 1.0)
            return True

    def drop(self) -> None:
        """The run is over: forget what is buffered and take nothing more."""
        with self._cond:
            self._dropped = True
            self._done += len(self._points) + len(self._lines)
            self._points.clear()
            self._lines.clear()
            if self._retry is not None:
                self._done += len(self._retry.items)
                self._retry = None
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    @property
    def buffered(self) -> int:
        with self._cond:
            return self._pending()

    # The sender thread -------------------------------------------------------------------

    def _pending(self) -> int:
        return len(self._points) + len(self._lines) + (len(self._retry.items) if self._retry else 0)

    def _full_batch_waiting(self) -> bool:
        return len(self._points) >= MAX_ITEMS_PER_BATCH or len(self._lines) >= MAX_ITEMS_PER_BATCH

    def _next_batch(self) -> _Batch | None:
        if self._retry is not None:
            return self._retry
        if self._points:
            count = min(MAX_ITEMS_PER_BATCH, len(self._points))
            return _Batch("metrics", [self._points.popleft() for _ in range(count)])
        if self._lines:
            items, size = [], 0
            while self._lines and len(items) < MAX_ITEMS_PER_BATCH:
                line_size = len(json.dumps(self._lines[0], ensure_ascii=False).encode())
                if items and size + line_size > MAX_LOG_BYTES_PER_BATCH:
                    break
                items.append(self._lines.popleft())
                size += line_size
            return _Batch("logs", items)
        return None

    def _run(self) -> None:
        api = self._api_factory()
        try:
            while True:
                with self._cond:
                    batch = self._wait_for_batch()
                if batch is None:
                    return
                outcome = self._send(api, batch)
                with self._cond:
                    self._settle(batch, outcome)
                    self._cond.notify_all()
        finally:
            api.close()

    def _wait_for_batch(self) -> _Batch | None:
        """The next batch to send once one is due; None when closing with nothing left."""
        while True:
            now = time.monotonic()
            if self._dropped or self._pending() == 0:
                self._flush_wanted = False
                if self._closing:
                    return None
                self._cond.wait()
                self._next_send = time.monotonic() + self._flush_interval
                continue
            if now < self._paused_until and not self._closing:
                self._cond.wait(self._paused_until - now)
                continue
            if self._flush_wanted or self._closing or self._full_batch_waiting() or now >= self._next_send:
                self._retry = self._next_batch()
                return self._retry
            self._cond.wait(self._next_send - now)

    def _settle(self, batch: _Batch, outcome: str) -> None:
        if outcome == "again" and not self._closing and not self._dropped:
            # Unanswered: keep it (same key) and try again after a pause.
            self._paused_until = time.monotonic() + max(self._flush_interval, 1.0)
            return
        if self._retry is batch:
            self._retry = None
            self._done += len(batch.items)
        if outcome == "again":  # closing, and the server does not answer
            self._drop_remaining()

    def _drop_remaining(self) -> None:
        lost = len(self._points) + len(self._lines)
        if lost:
            logger.warning("dropping %d buffered metric points and log lines: the server is unreachable", lost)
        self._done += lost
        self._points.clear()
        self._lines.clear()

    def _send(self, api: Api, batch: _Batch) -> str:
        try:
            api.report(batch.kind, batch.body(), key=batch.key)
        except Unreachable as exc:
            self.last_error = exc
            logger.warning("%s batch of %d not sent yet: %s", batch.kind, len(batch.items), exc)
            return "again"
        except Conflict as exc:
            self.last_error = exc
            if self._on_conflict(exc):
                return "sent"  # the run is over; drop() has emptied the buffers
            # Not started yet: keep it for later. The server stored nothing, and it keeps
            # its 409 as the answer to this key, so the next try takes a new one.
            batch.key = new_key()
            return "again"
        except AuthError as exc:
            self.last_error = exc
            self._on_auth_error(exc)
            self.drop()
            return "sent"
        except ClientError as exc:
            # A refused batch (a bug in the agent's data) is dropped alone; the rest goes on.
            self.last_error = exc
            logger.error("%s batch of %d refused and dropped: %s", batch.kind, len(batch.items), exc)
            return "sent"
        return "sent"
