"""One cell of the load-test grid, the search for the highest sustainable rate, and idle
memory per socket. The clients run in separate processes (``clients.worker_main``)."""

import asyncio
import multiprocessing
import queue
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from realtime.loadtest.clients import ClientStats, worker_main
from realtime.loadtest.servers import Server

P99_LIMIT_MS = 250.0
# A cell keeps pace when the clients got at least this share of rate × clients deliveries a
# second over the production window: a server whose producer falls behind (its event loop
# busy writing) has low latency but does not sustain the rate it was asked for.
PACE_FRACTION = 0.95
READY_TIMEOUT_SECONDS = 300.0


@dataclass
class Target:
    name: str
    ws_url: str
    headers: list
    produce: Callable[[float, int], Awaitable[int]]
    server: Server | None = None


@dataclass
class CellResult:
    target: str
    clients: int
    rate: float
    duration: float
    connected: int = 0
    produced: int = 0
    expected: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    failures: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_cpu_percent: float | None = None
    notes: list = field(default_factory=list)

    @property
    def deliveries_per_second(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.out_of_order == 0 and self.failures == 0

    @property
    def kept_pace(self) -> bool:
        return self.deliveries_per_second >= PACE_FRACTION * self.rate * self.connected

    @property
    def sustainable(self) -> bool:
        return self.exact and self.connected == self.clients and self.p99_ms < P99_LIMIT_MS and self.kept_pace

    def row(self) -> dict:
        return {
            "server": self.target,
            "clients": self.clients,
            "events_per_s": self.rate,
            "deliveries_per_s": round(self.deliveries_per_second),
            "p50_ms": round(self.p50_ms, 1),
            "p99_ms": round(self.p99_ms, 1),
            "max_ms": round(self.max_ms, 1),
            "lost": self.lost,
            "duplicated": self.duplicates,
            "out_of_order": self.out_of_order,
            "connected": f"{self.connected}/{self.clients}",
            "kept_pace": self.kept_pace,
            "sustainable": self.sustainable,
            "server_cpu_percent": self.server_cpu_percent,
        }


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class ClientPool:
    """Client processes holding ``total`` sockets, split evenly."""

    def __init__(self, target: Target, total: int, processes: int, ramp_per_second: float = 2000.0):
        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.controls = []
        self.processes = []
        processes = max(1, min(processes, total))
        shares = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
        for share in shares:
            control = context.Queue()
            process = context.Process(
                target=worker_main,
                args=(
                    target.ws_url,
                    target.headers,
                    share,
                    control,
                    self.results,
                    ramp_per_second / processes,
                ),
                daemon=True,
            )
            process.start()
            self.controls.append(control)
            self.processes.append(process)

    def wait_ready(self) -> int:
        connected = 0
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        for _ in self.processes:
            kind, value = self.results.get(timeout=max(1.0, deadline - time.monotonic()))
            assert kind == "ready"
            connected += value
        return connected

    def send(self, message) -> None:
        for control in self.controls:
            control.put(message)

    def collect(self, timeout: float) -> ClientStats:
        total = ClientStats()
        for _ in self.processes:
            try:
                _kind, stats = self.results.get(timeout=timeout)
            except queue.Empty:
                total.connect_failures += 1
                continue
            total.merge(stats)
        return total

    def close(self) -> None:
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


def run_cell(
    target: Target, clients: int, rate: float, duration: float, processes: int, grace: float = 15.0, on_progress=None
) -> CellResult:
    result = CellResult(target.name, clients, rate, duration)
    pool = ClientPool(target, clients, processes)
    try:
        result.connected = pool.wait_ready()
        count = max(1, int(rate * duration))
        cpu_before = target.server.cpu_seconds() if target.server else None
        started = time.perf_counter()

        async def produce_with_progress() -> int:
            task = asyncio.ensure_future(target.produce(rate, count))
            while not task.done():
                await asyncio.sleep(0.25)
                if on_progress:
                    on_progress(min(duration, time.perf_counter() - started))
            return task.result()

        end_seq = asyncio.run(produce_with_progress())
        production_seconds = time.perf_counter() - started
        pool.send(("measure", end_seq, grace))
        stats = pool.collect(timeout=grace + 60)
        elapsed = time.perf_counter() - started
        if cpu_before is not None:
            result.server_cpu_percent = round(100.0 * (target.server.cpu_seconds() - cpu_before) / elapsed, 1)
        result.produced = count
        result.expected = count * result.connected
        result.received = stats.received
        result.lost = stats.lost
        result.duplicates = stats.duplicates
        result.out_of_order = stats.out_of_order
        result.failures = stats.connect_failures + stats.closed_early
        # Deliveries are counted over the production window (the rate the server sustained).
        result.seconds = production_seconds
        result.p50_ms = statistics.median(stats.latencies_ms) if stats.latencies_ms else 0.0
        result.p99_ms = _percentile(stats.latencies_ms, 0.99)
        result.max_ms = max(stats.latencies_ms, default=0.0)
    finally:
        pool.close()
    return result


def find_max_rate(
    target: Target, clients: int, duration: float, processes: int, rates: list[float], on_result=None
) -> CellResult | None:
    """The highest rate of the ladder that is sustainable (stops at the first failure)."""
    best = None
    for rate in rates:
        result = run_cell(target, clients, rate, duration, processes)
        if on_result:
            on_result(result)
        if not result.sustainable:
            break
        best = result
    return best


def idle_memory(target: Target, sockets: int, processes: int, settle_seconds: float = 3.0) -> dict:
    """Server RSS per idle socket: open ``sockets`` and hold them."""
    assert target.server is not None
    before = target.server.rss_bytes()
    pool = ClientPool(target, sockets, processes)
    try:
        connected = pool.wait_ready()
        time.sleep(settle_seconds)
        cpu_before, at = target.server.cpu_seconds(), time.perf_counter()
        time.sleep(settle_seconds * 2)
        idle_cpu = 100.0 * (target.server.cpu_seconds() - cpu_before) / (time.perf_counter() - at)
        after = target.server.rss_bytes()
        pool.send(("idle",))
        pool.send(("close",))
        pool.collect(timeout=60)
    finally:
        pool.close()
    return {
        "server": target.name,
        "sockets": connected,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "kib_per_socket": round((after - before) / max(connected, 1) / 1024, 1),
        "idle_cpu_percent": round(idle_cpu, 1),
    }
