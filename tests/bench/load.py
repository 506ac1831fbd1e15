"""The load-generating client: one process per agent, httpx with keep-alive, no Django.

Every agent sends batches of ``POINTS_PER_CALL`` points (``METRICS`` metric names ×
consecutive steps, each with a timestamp), built the same way for Research Engine and
for MLflow: only the URL, the auth header and the body's field names differ.
"""

import json
import math
import multiprocessing
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

POINTS_PER_CALL = 1000
METRICS = ("loss", "accuracy", "reward", "tokens", "cost", "lr", "grad_norm", "kl", "entropy", "latency")
STEPS_PER_CALL = POINTS_PER_CALL // len(METRICS)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    """Where one agent sends its batches."""

    kind: str  # "research" | "mlflow"
    url: str
    run_id: str
    headers: dict = field(default_factory=dict)
    # A fresh Idempotency-Key on every call, as the agent client sends (Research Engine only).
    idempotency_key: bool = False


def _value(metric: int, step: int) -> float:
    return math.sin(step / 50.0 + metric) * (metric + 1) + step * 1e-4


def batch(target: Target, call: int) -> bytes:
    """The body of call number ``call`` (steps ``call * STEPS_PER_CALL`` onwards)."""
    first = call * STEPS_PER_CALL
    if target.kind == "research":
        points = [
            {
                "name": name,
                "value": _value(m, step),
                "step": step,
                "timestamp": (EPOCH + timedelta(seconds=step)).isoformat().replace("+00:00", "Z"),
            }
            for step in range(first, first + STEPS_PER_CALL)
            for m, name in enumerate(METRICS)
        ]
        return json.dumps({"points": points}).encode()
    epoch_ms = int(EPOCH.timestamp() * 1000)
    metrics = [
        {"key": name, "value": _value(m, step), "timestamp": epoch_ms + step * 1000, "step": step}
        for step in range(first, first + STEPS_PER_CALL)
        for m, name in enumerate(METRICS)
    ]
    return json.dumps({"run_id": target.run_id, "metrics": metrics}).encode()


def agent(target: Target, warmup: int, seconds: float, max_calls: int, barrier, results) -> None:
    """Warm up, wait for the other agents, then send batches for ``seconds`` (or ``max_calls``)."""
    headers = {"Content-Type": "application/json", **target.headers}
    latencies, failures, calls = [], 0, 0
    with httpx.Client(timeout=120.0, headers=headers) as client:
        for i in range(warmup):
            client.post(target.url, content=batch(target, i)).raise_for_status()
        barrier.wait()
        started = time.perf_counter()
        call = warmup
        while calls < max_calls and time.perf_counter() - started < seconds:
            body = batch(target, call)
            extra = {"Idempotency-Key": uuid.uuid4().hex} if target.idempotency_key else None
            t0 = time.perf_counter()
            try:
                response = client.post(target.url, content=body, headers=extra)
                problem = None if response.status_code == 200 else f"{response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            latencies.append(time.perf_counter() - t0)
            if problem:
                failures += 1
                if failures <= 3:
                    print(f"  ! {problem}", flush=True)
            calls += 1
            call += 1
        finished = time.perf_counter()
    results.put(
        {
            "started": started,
            "finished": finished,
            "calls": calls,
            "failures": failures,
            "points": (calls - failures) * POINTS_PER_CALL,
            "latencies": latencies,
        }
    )


def warm(targets: list[Target]) -> None:
    """One call per target before anything is measured (steps below 0, never sent again)."""
    for target in targets:
        with httpx.Client(timeout=120.0, headers={"Content-Type": "application/json", **target.headers}) as client:
            client.post(target.url, content=batch(target, -1)).raise_for_status()


def push(targets: list[Target], *, warmup: int = 5, seconds: float = 15.0, max_calls: int = 2000, meter=None) -> dict:
    """Run one agent process per target at once; points/s over the common window.

    ``meter()`` (optional) starts a CPU meter of the server side when the agents start
    sending; its ``seconds()`` is read when they are done.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(targets))
    results = ctx.Queue()
    processes = [ctx.Process(target=agent, args=(t, warmup, seconds, max_calls, barrier, results)) for t in targets]
    for p in processes:
        p.start()
    # The agents warm up, then meet at the barrier; the meter's window covers the warm-up
    # too, and the per-point figure below divides by every point sent meanwhile.
    cpu = meter() if meter else None
    outcomes = [results.get(timeout=seconds + 600) for _ in processes]
    cpu_seconds = cpu.seconds() if cpu else None
    for p in processes:
        p.join()
    start = min(o["started"] for o in outcomes)
    end = max(o["finished"] for o in outcomes)
    points = sum(o["points"] for o in outcomes)
    return {
        "agents": len(targets),
        "calls": sum(o["calls"] for o in outcomes),
        "failures": sum(o["failures"] for o in outcomes),
        "points": points,
        "seconds": end - start,
        "points_per_second": points / (end - start),
        "latencies": [x for o in outcomes for x in o["latencies"]],
        # Server CPU per point, over the warm-up calls and the measured ones.
        "cpu_ms_per_point": (
            cpu_seconds * 1000 / (points + warmup * POINTS_PER_CALL * len(targets)) if cpu_seconds else None
        ),
    }
