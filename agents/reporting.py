"""What an agent reports about its own run, one transaction per report.

Each report locks the run (``begin_report``: 409 unless active; a starting run becomes
running first, recorded as ``agent_initialized``), applies the change and sends the
matching signal. Inputs arrive already validated (``agents/reports.py``).
"""

from django.db import connection, transaction
from django.utils import timezone

from agents import signals
from agents.lifecycle import begin_report, finish
from agents.metrics import Point, store_points
from agents.models import AgentRun, LogLine, RunStatus
from experiments import lifecycle as experiment_lifecycle
from experiments.errors import ConflictError
from experiments.timestamps import format_timestamp


def _merge_metrics(run: AgentRun, metrics: dict | None) -> None:
    if metrics:
        run.metrics = {**(run.metrics or {}), **metrics}


@transaction.atomic
def record_progress(
    *, run: AgentRun, progress_percent: float, current_action: str | None = None, metrics: dict | None = None
) -> AgentRun:
    run = begin_report(run, kind="progress")
    run.progress_percent = progress_percent
    if current_action is not None:
        run.current_action = current_action
    _merge_metrics(run, metrics)
    run.save(update_fields=["progress_percent", "current_action", "metrics", "updated_at"])
    signals.run_progressed.send(sender=AgentRun, run=run)
    return run


@transaction.atomic
def record_metrics(*, run: AgentRun, points: list[Point]) -> int:
    run = begin_report(run, kind="metrics")
    latest = store_points(run, points, timezone.now())
    signals.metrics_recorded.send(sender=AgentRun, run=run, latest=latest, count=len(points))
    return len(points)


@transaction.atomic
def append_logs(*, run: AgentRun, lines: list[dict]) -> int:
    """``lines``: dicts with level, message and timestamp (None: now)."""
    run = begin_report(run, kind="logs")
    now = timezone.now()
    rows = [(run.pk, line["level"], line["message"], line["timestamp"] or now) for line in lines]
    table = LogLine._meta.db_table
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} (run_id, level, message, timestamp) VALUES (%s, %s, %s, %s)", rows)
    stored = [{"level": r[1], "message": r[2], "timestamp": r[3]} for r in rows]
    signals.logs_appended.send(sender=AgentRun, run=run, lines=stored, count=len(stored))
    return len(rows)


@transaction.atomic
def record_validation(*, run: AgentRun, passed: bool, details=None) -> AgentRun:
    run = begin_report(run, kind="validation")
    if run.status == RunStatus.AWAITING_APPROVAL:
        raise ConflictError("The run awaits a decision on its plan; validate after it is approved.")
    run.validation = {"passed": passed, "details": details, "at": format_timestamp(timezone.now())}
    run.save(update_fields=["validation", "updated_at"])
    signals.validation_recorded.send(sender=AgentRun, run=run)
    return run


@transaction.atomic
def complete(*, run: AgentRun, result=None, metrics: dict | None = None) -> AgentRun:
    run = begin_report(run, kind="complete", finishes=True)
    if run.status == RunStatus.AWAITING_APPROVAL:
        raise ConflictError("The run awaits a decision on its plan; it cannot complete before that.")
    _merge_metrics(run, metrics)
    finish(run, status=RunStatus.COMPLETED, result=result, metrics=run.metrics, progress_percent=100.0)
    signals.run_completed.send(sender=AgentRun, run=run)
    experiment_lifecycle.finish_if_done(experiment=run.experiment)
    return run


@transaction.atomic
def report_failure(*, run: AgentRun, error: str) -> AgentRun:
    run = begin_report(run, kind="fail", finishes=True)
    finish(run, status=RunStatus.FAILED, error=error)
    signals.run_failed.send(sender=AgentRun, run=run, reason="agent_reported")
    experiment_lifecycle.finish_if_done(experiment=run.experiment)
    return run
