"""Plan approval: an agent submits a plan and waits; an operator decides, or time runs out.

The deadline is stored on the run (``approval_deadline``), so the timeout needs no timer
that a restart could lose: every serving process sweeps for overdue plans about once a
second (``realtime/background.py``), and any read of a run sweeps that run first. The
expiry and a decision both take the run's row lock and re-check that it still awaits
approval, so whichever commits first wins and the other finds nothing to do: the
timeout fires exactly once however many processes sweep, and never after a decision.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from agents import signals
from agents.lifecycle import begin_report, finish, lock_run
from agents.models import AgentRun, RunStatus
from experiments import lifecycle as experiment_lifecycle
from experiments import runtime_config
from experiments.errors import ConflictError
from experiments.timestamps import format_timestamp

APPROVAL_TIMEOUT_ERROR = "approval_timeout: no decision on the plan within {seconds} s"


@transaction.atomic
def submit_plan(*, run: AgentRun, plan) -> AgentRun:
    run = begin_report(run, kind="plan")
    if run.status != RunStatus.RUNNING:
        raise ConflictError(f"A plan can only be submitted by a running run; this one is {run.status}.")
    now = timezone.now()
    seconds = runtime_config.get("approval_timeout_seconds")
    deadline = now + timedelta(seconds=seconds)
    run.status = RunStatus.AWAITING_APPROVAL
    run.plan = plan
    run.approval = {
        "state": "pending",
        "requested_at": format_timestamp(now),
        "deadline": format_timestamp(deadline),
        "timeout_seconds": seconds,
        "decided_at": None,
        "decided_by": None,
        "feedback": None,
        "revise": False,
    }
    run.approval_deadline = deadline
    run.save(update_fields=["status", "plan", "approval", "approval_deadline", "updated_at"])
    signals.plan_submitted.send(sender=AgentRun, run=run)
    return run


def decide_plan(*, run: AgentRun, by, approved: bool, feedback: str = "", revise: bool = False) -> AgentRun:
    """Approve, reject, or reject for revision. 409 unless the run awaits approval.

    A plan already past its deadline times out first (its own transaction), so a late
    decision loses to the timeout instead of racing it. Do not call inside a transaction.
    """
    expire_if_overdue(run=run)
    return _decide(run=run, by=by, approved=approved, feedback=feedback, revise=revise)


@transaction.atomic
def _decide(*, run: AgentRun, by, approved: bool, feedback: str, revise: bool) -> AgentRun:
    run = lock_run(run)
    if run.status != RunStatus.AWAITING_APPROVAL:
        raise ConflictError(f"The run is {run.status}; there is no plan awaiting a decision.")
    now = timezone.now()
    if approved:
        state = "approved"
    elif revise:
        state = "revision_requested"
    else:
        state = "rejected"
    run.approval = {
        **(run.approval or {}),
        "state": state,
        "decided_at": format_timestamp(now),
        "decided_by": getattr(by, "username", None),
        "feedback": feedback or None,
        "revise": bool(revise and not approved),
    }
    run.approval_deadline = None
    if approved or revise:
        run.status = RunStatus.RUNNING
        run.save(update_fields=["status", "approval", "approval_deadline", "updated_at"])
        signals.plan_decided.send(
            sender=AgentRun, run=run, approved=approved, feedback=feedback, revise=bool(revise), by=by
        )
        return run
    run.save(update_fields=["approval", "approval_deadline", "updated_at"])
    signals.plan_decided.send(sender=AgentRun, run=run, approved=False, feedback=feedback, revise=False, by=by)
    finish(run, status=RunStatus.STOPPED, stop_reason="plan_rejected")
    signals.run_stopped.send(sender=AgentRun, run=run, reason="plan_rejected", by=by)
    experiment_lifecycle.finish_if_done(experiment=run.experiment)
    return run


def expire_if_overdue(*, run: AgentRun, now=None) -> bool:
    """Fail the run with ``approval_timeout`` if its plan is past the deadline.

    ``run`` as the caller read it decides whether to look at all (no write lock for the
    common case); the decision itself is re-made under the row lock.
    """
    now = now or timezone.now()
    if run.status != RunStatus.AWAITING_APPROVAL or run.approval_deadline is None:
        return False
    if run.approval_deadline > now:
        return False
    return _expire(run=run, now=now)


@transaction.atomic
def _expire(*, run: AgentRun, now) -> bool:
    run = lock_run(run)
    if run.status != RunStatus.AWAITING_APPROVAL or run.approval_deadline is None:
        return False
    if run.approval_deadline > now:
        return False
    seconds = (run.approval or {}).get("timeout_seconds")
    run.approval = {**(run.approval or {}), "state": "timed_out", "decided_at": format_timestamp(now)}
    finish(
        run,
        status=RunStatus.FAILED,
        error=APPROVAL_TIMEOUT_ERROR.format(seconds=seconds),
        approval=run.approval,
    )
    signals.run_failed.send(sender=AgentRun, run=run, reason="approval_timeout")
    experiment_lifecycle.finish_if_done(experiment=run.experiment)
    return True


def expire_overdue_approvals(*, now=None, limit: int = 100) -> int:
    """Time out every overdue plan; returns how many this call expired."""
    now = now or timezone.now()
    overdue = list(
        AgentRun.objects.filter(status=RunStatus.AWAITING_APPROVAL, approval_deadline__lte=now)
        .order_by("approval_deadline")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(_expire(run=AgentRun(pk=pk), now=now) for pk in overdue)
