"""Transitions of an agent run that operators and agents cause, one transaction each.

    pending ─(experiment starts)─▶ starting ─(first report)─▶ running ⇄ awaiting_approval
                                                                 └─▶ completed | failed | stopped

Reports live in ``agents/reporting.py`` and plan approval in ``agents/approval.py``; both
use the helpers here. Whenever a run reaches a terminal status the experiment is asked
to finish by itself (``experiments.lifecycle.finish_if_done``) in the same transaction.
"""

from django.db import transaction
from django.utils import timezone

from agents import signals
from agents.models import AgentRun, RunStatus
from agents.runs import build_run
from agents.tokens import new_token
from experiments import lifecycle as experiment_lifecycle
from experiments.errors import ConflictError
from experiments.models import Experiment, ExperimentStatus


def lock_run(run: AgentRun, *, experiment: bool = True) -> AgentRun:
    """Re-read the run under a row lock, taking its experiment's lock first.

    Every transition locks the experiment before any of its runs (``stop_experiment``
    locks the experiment, then each unfinished run). Locking both in one joined query
    takes the two rows in whatever order the plan reads them, so a report racing a stop
    could wait on the stop while the stop waits on it: PostgreSQL aborts one as a deadlock.

    ``experiment=False`` locks the run alone, for changes that never touch the experiment
    (progress, metrics, logs, validation, a plan): they take no other row lock but the
    event stream's, at the very end, so no lock order can cycle; and several agents of one
    experiment write their batches at the same time instead of one after another.
    """
    if experiment:
        experiment_id = run.experiment_id or AgentRun.objects.values_list("experiment_id", flat=True).get(pk=run.pk)
        Experiment.objects.select_for_update(no_key=True).only("pk").get(pk=experiment_id)
    return AgentRun.objects.select_for_update(of=("self",), no_key=True).select_related("experiment").get(pk=run.pk)


def begin_report(run: AgentRun, *, kind: str, finishes: bool = False) -> AgentRun:
    """Lock a run for a report: 409 unless it is active; a starting run starts running.

    Call inside the report's transaction. The move to running is recorded (event
    ``agent_initialized``) before the report itself is applied. A report that may finish
    the run (``finishes``: complete, fail) also locks the experiment, which it may finish.
    """
    run = lock_run(run, experiment=finishes)
    if run.status == RunStatus.PENDING:
        raise ConflictError(f"The run has not started yet; its {kind} report cannot be taken.")
    if run.is_finished:
        raise ConflictError(f"The run is {run.status}; it takes no more reports.")
    if run.status == RunStatus.STARTING:
        run.status = RunStatus.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at", "updated_at"])
        signals.run_initialized.send(sender=AgentRun, run=run)
    return run


def finish(run: AgentRun, *, status: str, **fields) -> None:
    """Move a locked run to a terminal status; the caller sends the matching signal."""
    run.status = status
    run.completed_at = timezone.now()
    run.approval_deadline = None
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=["status", "completed_at", "approval_deadline", "updated_at", *fields])


@transaction.atomic
def stop_run(*, run: AgentRun, by, reason: str = "operator") -> AgentRun:
    run = lock_run(run)
    if run.is_finished:
        raise ConflictError(f"The run is already {run.status}.")
    finish(run, status=RunStatus.STOPPED, stop_reason=reason)
    signals.run_stopped.send(sender=AgentRun, run=run, reason=reason, by=by)
    experiment_lifecycle.finish_if_done(experiment=run.experiment)
    return run


@transaction.atomic
def fail_run(*, run: AgentRun, error: str, reason: str = "agent_reported") -> AgentRun:
    """Fail a run that is still active (an agent's ``fail`` report goes through reporting)."""
    run = lock_run(run)
    if run.is_finished:
        raise ConflictError(f"The run is already {run.status}.")
    finish(run, status=RunStatus.FAILED, error=error)
    signals.run_failed.send(sender=AgentRun, run=run, reason=reason)
    experiment_lifecycle.finish_if_done(experiment=run.experiment)
    return run


@transaction.atomic
def retry_run(*, run: AgentRun, by) -> tuple[AgentRun, str]:
    """Start attempt n+1 of a failed or stopped run; returns the new run and its token."""
    run = lock_run(run)
    experiment = Experiment.objects.select_for_update(no_key=True).get(pk=run.experiment_id)
    if run.status not in (RunStatus.FAILED, RunStatus.STOPPED):
        raise ConflictError(f"Only a failed or stopped run can be retried; this one is {run.status}.")
    if AgentRun.objects.filter(retry_of=run).exists():
        raise ConflictError("This run was already retried; retry its latest attempt instead.")
    reopened = experiment_lifecycle.reopen_for_retry(experiment=experiment)
    status = RunStatus.PENDING if experiment.status == ExperimentStatus.CREATED else RunStatus.STARTING
    new_run, token = build_run(
        experiment=experiment,
        agent_type=run.agent_type,
        name=run.name,
        config=run.config,
        attempt=run.attempt + 1,
        retry_of=run,
        status=status,
    )
    # One experiment_updated event carries the new run and, if reopened, the new status.
    signals.run_created.send(sender=AgentRun, run=new_run, by=by, reopened=reopened)
    return new_run, token


@transaction.atomic
def reissue_token(*, run: AgentRun, by) -> str:
    """A new token for the run; the old one stops working when this commits."""
    run = lock_run(run)
    token, token_hash = new_token()
    run.token_hash = token_hash
    run.save(update_fields=["token_hash", "updated_at"])
    return token
