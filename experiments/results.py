"""An experiment's outcome: every run's result, final metrics and validation, and totals."""

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
    retried = {run.retry_of_id for run in runs if run.retry_of_id}
    by_status: dict[str, int] = {}
    tokens, cost = 0, 0.0
    passed = failed = 0
    rows = []
    for run in runs:
        metrics = run.metrics or {}
        tokens += _number(metrics.get("tokens_used"))
        cost += _number(metrics.get("cost"))
        latest = run.pk not in retried
        if latest:
            by_status[run.status] = by_status.get(run.status, 0) + 1
            validation = run.validation or {}
            if validation.get("passed") is True:
                passed += 1
            elif validation.get("passed") is False:
                failed += 1
        rows.append(
            {
                "run_id": run.public_id,
                "agent_type": run.agent_type,
                "name": run.name,
                "attempt": run.attempt,
                "retry_of": run.retry_of.public_id if run.retry_of_id else None,
                "latest_attempt": latest,
                "status": run.status,
                "outcome": run.status if run.status in TERMINAL_RUN_STATUSES else "in_progress",
                "progress_percent": run.progress_percent,
                "metrics": metrics,
                "result": run.result,
                "validation": run.validation,
                "error": run.error,
                "stop_reason": run.stop_reason or None,
                "started_at": format_timestamp(run.started_at),
                "completed_at": format_timestamp(run.completed_at),
                "duration_seconds": _duration(run.started_at, run.completed_at),
            }
        )
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
