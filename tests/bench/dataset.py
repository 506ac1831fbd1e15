"""The data set the read benchmarks run on: one experiment, 2,000 runs, 1,000,000 points.

    .venv/bin/python -m tests.bench.dataset [--rebuild]

Layout (``docs/BENCHMARKS.md`` repeats it):

* one experiment, ``running``, owned by the non-staff user ``bench-owner`` (whose API token
  the benchmarks use), with 2,000 runs of three agent types created through
  ``experiments.lifecycle`` (``create_experiment`` then ``start_experiment``);
* the runs' outcomes written with one bulk ``UPDATE`` (not through the report endpoints):
  1,300 completed with a result and a validation, 250 failed with an error, 150 stopped,
  300 still running; every run has ``tokens_used``, ``cost`` and ``elapsed_time``;
* 1,000,000 metric points in 10 of the runs × 4 metrics (``loss``, ``reward``,
  ``accuracy``, ``tokens``) × 25,000 steps, written with ``agents.metrics.store_points`` in
  batches of 1,000 points (250 steps × 4 metrics, as an agent batches them), one
  transaction per batch: the points, the block pyramid and the series summaries are
  exactly what ingestion stores. The other 1,990 runs have no metric series.

A second run finds the data set by its name and reuses it (``--rebuild`` drops it first).
"""

import argparse
import math
import random
import time
from datetime import UTC, datetime, timedelta

from tests.bench.servers import DEFAULT_DATABASE, prepare_database

NAME = "bench: 2,000 runs, 1,000,000 points"
RUNS = 2000
POINT_RUNS = 10
METRICS = ("loss", "reward", "accuracy", "tokens")
STEPS = 25_000
STEPS_PER_BATCH = 250
OWNER = "bench-owner"
AGENT_TYPES = ("claude_code", "codex", "aider")
STARTED = datetime(2026, 1, 1, tzinfo=UTC)


def _value(metric: str, step: int, rng: random.Random) -> float:
    noise = rng.gauss(0, 0.02)
    if metric == "loss":
        value = 2.5 * math.exp(-step / 6000) + 0.1 + noise
        if rng.random() < 0.0005:  # rare spikes: downsampling must keep them
            value += rng.uniform(2, 5)
        return value
    if metric == "reward":
        return math.tanh(step / 8000) + 0.1 * math.sin(step / 300) + noise
    if metric == "accuracy":
        return min(1.0, 0.4 + 0.55 * (1 - math.exp(-step / 5000)) + noise / 4)
    return float(step * 180 + rng.randint(0, 400))


def _owner():
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, created = get_user_model().objects.get_or_create(username=OWNER)
    if created:
        user.set_unusable_password()
        user.save()
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key


def _allow_bench_rates() -> None:
    """A benchmark client sends hundreds of requests a minute: lift the per-user limit here."""
    from experiments.models import RuntimeSetting

    RuntimeSetting.objects.update_or_create(key="user_rate_per_minute", defaults={"value": 10_000_000})


def _outcomes(experiment) -> None:
    """Finished runs with results, failures, stops: one UPDATE from a VALUES list."""
    from django.db import connection

    from agents.models import AgentRun

    rng = random.Random(7)
    rows = []
    pks = list(AgentRun.objects.filter(experiment=experiment).order_by("pk").values_list("pk", flat=True))
    for n, pk in enumerate(pks):
        started = STARTED + timedelta(seconds=n)
        elapsed = rng.uniform(60, 3600)
        tokens = rng.randint(1_000, 400_000)
        metrics = {"tokens_used": tokens, "cost": round(tokens * 0.000015, 6), "elapsed_time": round(elapsed, 1)}
        result = validation = error = None
        stop_reason = ""
        completed = started + timedelta(seconds=elapsed)
        if n < 1300:
            status = "completed"
            result = {
                "summary": f"Implemented task {n}: tests pass.",
                "files_changed": rng.randint(1, 40),
                "score": round(rng.random(), 4),
            }
            validation = {"passed": rng.random() < 0.8, "details": {"tests": rng.randint(5, 200)}, "at": None}
        elif n < 1550:
            status = "failed"
            error = f"Agent crashed in step {rng.randint(1, 50)}: RuntimeError('out of budget')"
        elif n < 1700:
            status, stop_reason = "stopped", "operator"
        else:
            status, completed = "running", None
        progress = 100.0 if status == "completed" else round(rng.uniform(0, 99), 1)
        rows.append((pk, status, progress, metrics, result, validation, error, stop_reason, started, completed))
    table = AgentRun._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET status = %s, progress_percent = %s, metrics = %s::jsonb, result = %s::jsonb, "
            "validation = %s::jsonb, error = %s, stop_reason = %s, started_at = %s, completed_at = %s "
            "WHERE id = %s",
            [
                (
                    status,
                    progress,
                    _json(metrics),
                    _json(result),
                    _json(validation),
                    error,
                    stop_reason,
                    started,
                    completed,
                    pk,
                )
                for pk, status, progress, metrics, result, validation, error, stop_reason, started, completed in rows
            ],
        )


def _json(value) -> str | None:
    import json

    return None if value is None else json.dumps(value)


def _points(runs) -> int:
    from django.db import transaction

    from agents.lifecycle import lock_run
    from agents.metrics import Point, store_points

    stored = 0
    started = time.perf_counter()
    for r, run in enumerate(runs):
        rng = random.Random(r)
        for first in range(0, STEPS, STEPS_PER_BATCH):
            points = [
                Point(metric, _value(metric, step, rng), step, STARTED + timedelta(seconds=step))
                for step in range(first, first + STEPS_PER_BATCH)
                for metric in METRICS
            ]
            with transaction.atomic():
                store_points(lock_run(run), points, STARTED)
            stored += len(points)
        rate = stored / (time.perf_counter() - started)
        print(f"  run {r + 1}/{len(runs)}: {stored:,} points ({rate:,.0f} points/s)", flush=True)
    return stored


def build(*, rebuild: bool = False):
    """The data set's experiment (built if missing) and the owner's API token."""
    from agents.models import AgentRun, MetricPoint
    from experiments import lifecycle
    from experiments.models import Experiment

    owner, token = _owner()
    _allow_bench_rates()
    existing = Experiment.objects.filter(name=NAME).first()
    if existing is not None and rebuild:
        existing.delete()
        existing = None
    if existing is not None:
        points = MetricPoint.objects.filter(series__run__experiment=existing).count()
        if existing.runs.count() == RUNS and points == POINT_RUNS * len(METRICS) * STEPS:
            return existing, token
        print("the stored data set is incomplete: rebuilding it", flush=True)
        existing.delete()
    print(f"building {NAME!r} …", flush=True)
    t0 = time.perf_counter()
    experiment, _issued = lifecycle.create_experiment(
        name=NAME,
        by=owner,
        description="Data set of tests/bench (see docs/BENCHMARKS.md).",
        config={"benchmark": True},
        agents=[
            lifecycle.RunSpec(agent_type=AGENT_TYPES[i % len(AGENT_TYPES)], name=f"agent-{i:04d}") for i in range(RUNS)
        ],
    )
    experiment = lifecycle.start_experiment(experiment=experiment, by=owner)
    print(f"  {RUNS} runs created and started in {time.perf_counter() - t0:.1f} s", flush=True)
    _outcomes(experiment)
    # The runs that report series are still running (the points were reported while active).
    point_runs = list(AgentRun.objects.filter(experiment=experiment, status="running").order_by("pk")[:POINT_RUNS])
    t1 = time.perf_counter()
    stored = _points(point_runs)
    print(f"  {stored:,} points stored in {time.perf_counter() - t1:.1f} s", flush=True)
    return experiment, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    prepare_database(args.database)
    experiment, _token = build(rebuild=args.rebuild)
    print(f"data set ready: experiment {experiment.public_id}")


if __name__ == "__main__":
    main()
