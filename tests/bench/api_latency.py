"""API latency with 2,000 runs and 1,000,000 points loaded, over HTTP through daphne.

    .venv/bin/python -m tests.bench.api_latency [--requests 300] [--warmup 30]

Builds (or reuses) the data set of ``tests/bench/dataset.py`` in the PostgreSQL database
``bench_research``, starts one daphne process on it, and times, one request at a time
with an httpx keep-alive client and the experiment owner's API token (a non-staff member):

* ``GET /api/research/agents`` (the default page: 10 runs, with the count),
* ``GET /api/research/results/{id}`` (all 2,000 runs and the summary),
* ``GET /api/research/metrics/{id}?max_points=500`` (40 series of 25,000 points each),
* and, for scale, the same metrics for one run (``&run=``).

Each endpoint gets ``--warmup`` untimed requests first. The floor is a p99 of 50 ms.

Results and metric bodies are cached by the experiment's seq (``experiments/response_cache.py``),
so the repeated requests above are answered from the cache. The "after a …" rows time what
a live experiment does to them: before each of ``--cold-requests`` requests the benchmark
records a progress report (a new event: results are recomputed, metrics are not) or a
one-point metrics batch on a running run with series (metrics are recomputed).
"""

import argparse
import time

import httpx

from tests.bench.servers import (
    DEFAULT_DATABASE,
    daphne_servers,
    latency_summary,
    machine_line,
    prepare_database,
    print_table,
)

FLOOR_MS = 50.0


def measure(client: httpx.Client, url: str, *, warmup: int, requests: int, before=None) -> tuple[dict, int]:
    for _ in range(warmup):
        client.get(url).raise_for_status()
    timings, size = [], 0
    for _ in range(requests):
        if before:
            before()
        t0 = time.perf_counter()
        response = client.get(url)
        body = response.content
        timings.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        size = len(body)
    return latency_summary(timings), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--cold-requests", type=int, default=60)
    args = parser.parse_args()

    print(f"machine: {machine_line()}")
    prepare_database(args.database)
    from tests.bench.dataset import build

    experiment, token = build()
    one_run = experiment.runs.filter(metric_series__isnull=False).order_by("pk").values_list("public_id", flat=True)[0]
    exp = experiment.public_id
    endpoints = [
        ("GET agents (default page)", "/api/research/agents"),
        ("GET results/{id}", f"/api/research/results/{exp}"),
        ("GET metrics/{id}?max_points=500", f"/api/research/metrics/{exp}?max_points=500"),
        ("GET metrics/{id}?max_points=500&run= (one run)", f"/api/research/metrics/{exp}?max_points=500&run={one_run}"),
    ]
    from agents import reporting
    from agents.metrics import Point
    from agents.models import AgentRun, RunStatus

    running = AgentRun.objects.filter(experiment=experiment, status=RunStatus.RUNNING).order_by("pk").first()
    charted = AgentRun.objects.filter(
        experiment=experiment, status=RunStatus.RUNNING, metric_series__isnull=False
    ).distinct()[0]
    changes = iter(range(10**9))

    def progress() -> None:
        reporting.record_progress(run=running, progress_percent=float(next(changes) % 100))

    def batch() -> None:
        reporting.record_metrics(run=charted, points=[Point("loss", 0.5, None, None)])

    endpoints += [
        ("GET results/{id}, after a progress report (cache miss)", f"/api/research/results/{exp}", progress),
        (
            "GET metrics/{id}?max_points=500, after a progress report",
            f"/api/research/metrics/{exp}?max_points=500",
            progress,
        ),
        (
            "GET metrics/{id}?max_points=500, after a metrics batch (cache miss)",
            f"/api/research/metrics/{exp}?max_points=500",
            batch,
        ),
    ]
    rows = []
    with daphne_servers(args.database, 1) as servers:
        port = servers[0][0]
        headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
            for label, url, *before in endpoints:
                print(f"{label} …", flush=True)
                if before:
                    stats, size = measure(client, url, warmup=5, requests=args.cold_requests, before=before[0])
                else:
                    stats, size = measure(client, url, warmup=args.warmup, requests=args.requests)
                verdict = "yes" if stats["p99"] <= FLOOR_MS else "NO"
                rows.append(
                    [
                        label,
                        f"{size / 1024:,.0f} KiB",
                        f"{stats['p50']:.1f}",
                        f"{stats['p90']:.1f}",
                        f"{stats['p99']:.1f}",
                        f"{stats['max']:.1f}",
                        verdict,
                    ]
                )
    print()
    print(
        f"{args.requests} sequential requests per endpoint after {args.warmup} warm-up requests "
        f"({args.cold_requests} after a change each for the cache-miss rows); ms"
    )
    print()
    print_table(["endpoint", "body", "p50", "p90", "p99", "max", f"p99 ≤ {FLOOR_MS:.0f} ms"], rows)


if __name__ == "__main__":
    main()
