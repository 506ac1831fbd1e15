"""An experiment's outcome: every run's result, final metrics and validation, and totals."""

from dataclasses import dataclass

import orjson
from django.db import connection
from django.utils import timezone

from agents.models import TERMINAL_RUN_STATUSES, AgentRun
from experiments.api.serializers import experiment_representation
from experiments.models import Experiment
from experiments.timestamps import format_timestamp


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _duration(start, end, now) -> float | None:
    if start is None:
        return None
    return round(((end or now) - start).total_seconds(), 3)


def experiment_results(experiment: Experiment) -> dict:
    """The results body; durations of what is still going run up to ``as_of``."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        runs, rows, validations = _runs_postgres(experiment, now)
    else:
        runs, rows = _runs_orm(experiment, now)
        validations = [row["validation"] for row in rows]
    retried = {run.retry_of_id for run in runs if run.retry_of_id}
    by_status: dict[str, int] = {}
    tokens, cost = 0, 0.0
    passed = failed = 0
    for index, run in enumerate(runs):
        metrics = run.metrics or {}
        tokens += _number(metrics.get("tokens_used"))
        cost += _number(metrics.get("cost"))
        latest = run.pk not in retried
        if isinstance(rows, list):
            rows[index]["latest_attempt"] = latest
        if latest:
            by_status[run.status] = by_status.get(run.status, 0) + 1
            validation = validations[index] or {}
            if validation.get("passed") is True:
                passed += 1
            elif validation.get("passed") is False:
                failed += 1
    return {
        "as_of": format_timestamp(now),
        "experiment": experiment_representation(experiment, runs=runs, include_runs=False),
        "runs": rows,
        "summary": {
            "total_runs": sum(by_status.values()),
            "attempts": len(runs),
            "by_status": by_status,
            "total_tokens": int(tokens),
            "total_cost": round(cost, 6),
            "duration_seconds": _duration(experiment.started_at, experiment.completed_at, now),
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
_TERMINAL = ", ".join(f"'{status}'" for status in sorted(TERMINAL_RUN_STATUSES))


def _number_sql(document: str, key: str) -> str:
    """A JSON value as a number when it is one (what ``_number`` does in Python)."""
    return f"CASE WHEN jsonb_typeof({document}->'{key}') = 'number' THEN ({document}->>'{key}')::float8 ELSE NULL END"


def _runs_postgres(experiment: Experiment, now) -> tuple[list, "orjson.Fragment", list]:
    """Two queries, and the runs' JSON written by PostgreSQL itself.

    A results body holds every run (thousands). Building it in Python (model instances,
    three JSON documents and two timestamps per run, then encoding it all again) cost
    several times the query; PostgreSQL writes the same JSON in C, in the contract's
    field order and formats, and it is embedded in the response as it is. A second, small
    query reads what the summaries need.
    """
    table = AgentRun._meta.db_table
    runs_sql = (
        "SELECT coalesce(json_agg(json_build_object("
        "'run_id', r.public_id, 'agent_type', r.agent_type, 'name', r.name, 'attempt', r.attempt, "
        "'retry_of', p.public_id, "
        f"'latest_attempt', NOT EXISTS (SELECT 1 FROM {table} c WHERE c.retry_of_id = r.id), "
        "'status', r.status, "
        f"'outcome', CASE WHEN r.status IN ({_TERMINAL}) THEN r.status ELSE 'in_progress' END, "
        "'progress_percent', r.progress_percent, 'metrics', coalesce(r.metrics, '{}'::jsonb), "
        "'result', r.result, 'validation', r.validation, 'error', r.error, "
        "'stop_reason', nullif(r.stop_reason, ''), "
        f"'started_at', {_TS.format(c='r.started_at')}, 'completed_at', {_TS.format(c='r.completed_at')}, "
        "'duration_seconds', round(extract(epoch from (coalesce(r.completed_at, %s) - r.started_at)), 3)"
        ") ORDER BY r.created_at, r.id), '[]')::text "
        f"FROM {table} r LEFT JOIN {table} p ON p.id = r.retry_of_id WHERE r.experiment_id = %s"
    )
    facts_sql = (
        f"SELECT id, retry_of_id, status, progress_percent, {_number_sql('metrics', 'tokens_used')}, "
        f"{_number_sql('metrics', 'cost')}, CASE WHEN jsonb_typeof(validation->'passed') = 'boolean' "
        "THEN (validation->>'passed')::boolean END "
        f"FROM {table} WHERE experiment_id = %s ORDER BY created_at, id"
    )
    with connection.cursor() as cursor:
        cursor.execute(runs_sql, [now, experiment.pk])
        runs_json = cursor.fetchone()[0]
        cursor.execute(facts_sql, [experiment.pk])
        facts = cursor.fetchall()
    runs, validations = [], []
    for pk, retry_of_id, status, progress, tokens, cost, passed in facts:
        metrics = {}
        if tokens is not None:
            metrics["tokens_used"] = tokens
        if cost is not None:
            metrics["cost"] = cost
        runs.append(_RunFacts(pk, retry_of_id, status, progress, metrics))
        validations.append(None if passed is None else {"passed": passed})
    return runs, orjson.Fragment(runs_json), validations


def _runs_orm(experiment: Experiment, now) -> tuple[list, list[dict]]:
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
        row["duration_seconds"] = _duration(run.started_at, run.completed_at, now)
        rows.append(row)
    return runs, rows
