"""Client worker processes: each holds a share of the sockets on one asyncio loop.

A client reads the snapshot's ``seq``, then counts every event: lost (a seq of the
expected range never seen), duplicated (seen twice), out of order (lower than one already
seen), and the latency from the event's ``timestamp`` (when the change was recorded) to
its arrival. Messages are not JSON-decoded: the two fields are found by position in the
bytes (``wsclient``), so the clients cost little CPU next to the server they measure.
"""

import asyncio
import contextlib
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime

from realtime.loadtest.wsclient import connect


@dataclass
class ClientStats:
    received: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    lost: int = 0
    connect_failures: int = 0
    closed_early: int = 0
    latencies_ms: list = field(default_factory=list)
    close_codes: dict = field(default_factory=dict)

    def merge(self, other: "ClientStats") -> None:
        self.received += other.received
        self.duplicates += other.duplicates
        self.out_of_order += other.out_of_order
        self.lost += other.lost
        self.connect_failures += other.connect_failures
        self.closed_early += other.closed_early
        self.latencies_ms.extend(other.latencies_ms)
        for code, count in other.close_codes.items():
            self.close_codes[code] = self.close_codes.get(code, 0) + count


def field_bytes(payload: bytes, name: bytes) -> bytes | None:
    """The raw value of ``"name":`` in a flat JSON object (quotes stripped)."""
    key = b'"' + name + b'":'
    start = payload.find(key)
    if start < 0:
        return None
    start += len(key)
    if payload[start : start + 1] == b'"':
        return payload[start + 1 : payload.index(b'"', start + 1)]
    end = start
    while end < len(payload) and payload[end] not in b",}":
        end += 1
    return payload[start:end]


_epochs: dict[bytes, float] = {}


def epoch(timestamp: bytes) -> float:
    value = _epochs.get(timestamp)
    if value is None:
        value = datetime.fromisoformat(timestamp.decode().replace("Z", "+00:00")).timestamp()
        if len(_epochs) > 10_000:
            _epochs.clear()
        _epochs[timestamp] = value
    return value


class Client:
    def __init__(self, worker: "Worker"):
        self.worker = worker
        self.start_seq: int | None = None
        self.seen: set[int] = set()
        self.max_seq = 0
        self.stats = ClientStats()
        self.protocol = None
        self.finished = False
        self.failed = False

    def on_message(self, payload: bytes) -> None:
        if self.start_seq is None:
            seq = field_bytes(payload, b"seq")
            self.start_seq = int(seq) if seq and seq != b"null" else 0
            self.max_seq = self.start_seq
            self.worker.client_ready()
            return
        if not payload.startswith(b'{"type":"event"'):
            return
        now = time.time()
        seq = int(field_bytes(payload, b"seq"))
        stats = self.stats
        if seq in self.seen:
            stats.duplicates += 1
            return
        if seq < self.max_seq:
            stats.out_of_order += 1
        self.seen.add(seq)
        self.max_seq = max(self.max_seq, seq)
        stats.received += 1
        timestamp = field_bytes(payload, b"timestamp")
        if timestamp:
            stats.latencies_ms.append((now - epoch(timestamp)) * 1000.0)
        self.worker.check_done(self)

    def fail_to_connect(self) -> None:
        if self.start_seq is None and not self.failed:
            self.failed = True
            self.stats.connect_failures += 1
            self.worker.client_ready()

    def on_close(self, code) -> None:
        if self.start_seq is None:
            self.fail_to_connect()
        elif not self.finished and not self.worker.closing:
            self.stats.closed_early += 1
            self.stats.close_codes[code] = self.stats.close_codes.get(code, 0) + 1
            self.worker.check_done(self, force=True)

    def complete(self, end_seq: int) -> bool:
        return self.start_seq is not None and len(self.seen) >= end_seq - self.start_seq

    def finish(self, end_seq: int) -> ClientStats:
        if self.start_seq is not None:
            expected = set(range(self.start_seq + 1, end_seq + 1))
            self.stats.lost = len(expected - self.seen)
        return self.stats


class Worker:
    def __init__(self, count: int):
        self.clients = [Client(self) for _ in range(count)]
        self.pending_ready = count
        self.ready = asyncio.Event()
        self.end_seq: int | None = None
        self.remaining = count
        self.done = asyncio.Event()
        self.closing = False

    def client_ready(self) -> None:
        self.pending_ready -= 1
        if self.pending_ready <= 0:
            self.ready.set()

    def check_done(self, client: Client, force: bool = False) -> None:
        if client.finished or self.end_seq is None:
            return
        if force or client.complete(self.end_seq):
            client.finished = True
            self.remaining -= 1
            if self.remaining <= 0:
                self.done.set()

    def start_measuring(self, end_seq: int) -> None:
        self.end_seq = end_seq
        self.remaining = len(self.clients)
        for client in self.clients:
            if client.start_seq is None or client.protocol is None:
                client.finished = True
                self.remaining -= 1
            else:
                self.check_done(client)
        if self.remaining <= 0:
            self.done.set()


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _open(client: Client, url: str, headers) -> None:
    try:
        client.protocol = await connect(url, headers, client.on_message, client.on_close)
    except Exception:
        client.fail_to_connect()


async def _worker(url, headers, count, control, results, ramp_per_second):
    """``control``: parent → this worker; ``results``: every worker → parent."""
    worker = Worker(count)
    loop = asyncio.get_running_loop()
    batch = 50
    for start in range(0, count, batch):
        await asyncio.gather(*(_open(c, url, headers) for c in worker.clients[start : start + batch]))
        if ramp_per_second:
            await asyncio.sleep(batch / ramp_per_second)
    await worker.ready.wait()
    connected = sum(1 for c in worker.clients if c.start_seq is not None)
    results.put(("ready", connected))
    message = await loop.run_in_executor(None, control.get)
    if message[0] == "idle":
        await loop.run_in_executor(None, control.get)  # hold the sockets until told to close
        worker.closing = True
        for client in worker.clients:
            if client.protocol is not None:
                client.protocol.close()
        results.put(("stats", ClientStats()))
        return
    end_seq, grace = message[1], message[2]
    worker.start_measuring(end_seq)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(worker.done.wait(), grace)
    worker.closing = True
    total = ClientStats()
    for client in worker.clients:
        total.merge(client.finish(end_seq))
        if client.protocol is not None:
            client.protocol.close()
    results.put(("stats", total))


def worker_main(url: str, headers: list, count: int, control, results, ramp_per_second: float) -> None:
    """Entry point of one client process (multiprocessing target)."""
    _raise_fd_limit()
    asyncio.run(_worker(url, headers, count, control, results, ramp_per_second))
