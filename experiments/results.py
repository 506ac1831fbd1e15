"""An experiment's outcome: every run's result, final metrics and validation, and totals."""

import json
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from agents.models import TERMINAL_RUN_STATUSES, AgentRun
from experiments.api.serializers import experiment_representation
from experiments.models import Experiment
from experiments.timestamps import format_timestamp


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _duration(start, end) -> float | None:
    if start is None:
        return None
    return round(((end or timezone.now()) - start).total_seconds(), 3)


def experiment_results(experiment: Experiment) -> dict:
    if connection.vendor == "postgresql":
        runs, rows = _runs_postgres(experiment)
    else:
        runs, rows = _runs_orm(experiment)
    retried = {run.retry_of_id for run in runs if run.retry_of_id}
    by_status: dict[str, int] = {}
    tokens, cost = 0, 0.0
    passed = failed = 0
    for run, row in zip(runs, rows, strict=True):
        metrics = run.metrics or {}
        tokens += _number(metrics.get("tokens_used"))
        cost += _number(metrics.get("cost"))
        latest = run.pk not in retried
        row["latest_attempt"] = latest
        if latest:
            by_status[run.status] = by_status.get(run.status, 0) + 1
            validation = row["validation"] or {}
            if validation.get("passed") is True:
                passed += 1
            elif validation.get("passed") is False:
                failed += 1
    return {
        "experiment": experiment_representation(experiment, runs=runs, include_runs=False),
        "runs": rows,
        "summary": {
            "total_runs": sum(by_status.values()),
            "attempts": len(runs),
            "by_status": by_status,
            "total_tokens": int(tokens),
            "total_cost": round(cost, 6),
            "duration_seconds": _duration(experiment.started_at, experiment.completed_at),
            "validation": {"passed": passed, "failed": failed},
        },
    }


def _row(
    run_id, agent_type, name, attempt, retry_of, status, progress, metrics, result, validation, error, stop_reason
):
    """A run's entry without ``latest_attempt`` (set once all attempts are known) and times."""
    return {
        "run_id": run_id,
        "agent_type": agent_type,
        "name": name,
        "attempt": attempt,
        "retry_of": retry_of,
        "latest_attempt": None,
        "status": status,
        "outcome": status if status in TERMINAL_RUN_STATUSES else "in_progress",
        "progress_percent": progress,
        "metrics": metrics or {},
        "result": result,
        "validation": validation,
        "error": error,
        "stop_reason": stop_reason or None,
    }


@dataclass(slots=True)
class _RunFacts:
    """What the summaries read of a run (``run_summary`` takes these or AgentRun objects)."""

    pk: int
    retry_of_id: int | None
    status: str
    progress_percent: float
    metrics: dict | None


# format_timestamp() in SQL: UTC, ISO 8601, microseconds only when there are any, "Z".
_TS = (
    "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
    "CASE WHEN date_trunc('second', {c} AT TIME ZONE 'UTC') = {c} AT TIME ZONE 'UTC' "
    "THEN '' ELSE to_char({c} AT TIME ZONE 'UTC', '.US') END || 'Z'"
)


def _runs_postgres(experiment: Experiment) -> tuple[list, list[dict]]:
    """One query; timestamps and durations computed by PostgreSQL, JSON parsed in one go.

    A results page holds every run (thousands): building model instances, parsing three
    JSON documents and two timestamps per run cost more than the query itself.
    """
    table = AgentRun._meta.db_table
    sql = (
        f"SELECT r.id, r.public_id, r.agent_type, r.name, r.attempt, r.retry_of_id, p.public_id, r.status, "
        "r.progress_percent, jsonb_build_array(r.metrics, r.result, r.validation)::text, r.error, "
        f"r.stop_reason, {_TS.format(c='r.started_at')}, {_TS.format(c='r.completed_at')}, "
        "extract(epoch from (coalesce(r.completed_at, %s) - r.started_at)) "
        f"FROM {table} r LEFT JOIN {table} p ON p.id = r.retry_of_id "
        "WHERE r.experiment_id = %s ORDER BY r.created_at, r.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), experiment.pk])
        fetched = cursor.fetchall()
    documents = json.loads("[" + ",".join(r[9] for r in fetched) + "]")
    runs, rows = [], []
    for r, (metrics, result, validation) in zip(fetched, documents, strict=True):
        runs.append(_RunFacts(r[0], r[5], r[7], r[8], metrics))
        row = _row(r[1], r[2], r[3], r[4], r[6], r[7], r[8], metrics, result, validation, r[10], r[11])
        row["started_at"], row["completed_at"] = r[12], r[13]
        # Exact seconds (numeric): the same float timedelta.total_seconds() gives.
        row["duration_seconds"] = None if r[14] is None else round(float(r[14]), 3)
        rows.append(row)
    return runs, rows


def _runs_orm(experiment: Experiment) -> tuple[list, list[dict]]:
    runs = list(
        AgentRun.objects.filter(experiment=experiment)
        .select_related("retry_of")
        .order_by("created_at", "id")
        .only(
            "public_id",
            "agent_type",
            "name",
            "attempt",
            "retry_of__public_id",
            "status",
            "progress_percent",
            "metrics",
            "result",
            "validation",
            "error",
            "stop_reason",
            "started_at",
            "completed_at",
            "created_at",
        )
    )
    rows = []
    for run in runs:
        row = _row(
            run.public_id,
            run.agent_type,
            run.name,
            run.attempt,
            run.retry_of.public_id if run.retry_of_id else None,
            run.status,
            run.progress_percent,
            run.metrics,
            run.result,
            run.validation,
            run.error,
            run.stop_reason,
        )
        row["started_at"] = format_timestamp(run.started_at)
        row["completed_at"] = format_timestamp(run.completed_at)
        row["duration_seconds"] = _duration(run.started_at, run.completed_at)
        rows.append(row)
    return runs, rows
