"""Every transition of an experiment, each in one transaction, each announced by a signal.

    created ──start──▶ running ──stop──▶ stopped
                          │  └── last run terminal ──▶ completed | failed | stopped
                          ◀── retry of a run (from any finished status)

Illegal moves raise ``ConflictError``. The API, the admin, the command endpoint and the
management commands all call these functions, so they all record the same events.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from agents import signals as run_signals
from agents.models import TERMINAL_RUN_STATUSES, AgentRun, RunStatus
from agents.runs import build_run
from experiments import signals
from experiments.errors import ConflictError
from experiments.models import Experiment, ExperimentStatus, Membership, Role


@dataclass(frozen=True)
class RunSpec:
    agent_type: str
    name: str = ""
    config: dict | None = None


@dataclass(frozen=True)
class IssuedRun:
    """A run together with its plain token, which exists only in this response."""

    run: AgentRun
    token: str


def lock(experiment: Experiment) -> Experiment:
    """Re-read the experiment under a row lock; transitions decide on fresh state.

    ``FOR NO KEY UPDATE`` (we never change a key): PostgreSQL's foreign-key checks of rows
    that reference the experiment (a run updated twice in one report, say) take ``FOR KEY
    SHARE`` on it, which a plain ``FOR UPDATE`` would block, closing a deadlock cycle with
    the event stream's row lock.
    """
    return Experiment.objects.select_for_update(no_key=True).get(pk=experiment.pk)


@transaction.atomic
def create_experiment(
    *,
    name: str,
    by,
    description: str = "",
    config: dict | None = None,
    agents: Iterable[RunSpec] = (),
) -> tuple[Experiment, list[IssuedRun]]:
    experiment = Experiment.objects.create(name=name, description=description, config=config or {}, created_by=by)
    if by is not None:
        Membership.objects.create(experiment=experiment, user=by, role=Role.OWNER)
    issued = [
        IssuedRun(*build_run(experiment=experiment, agent_type=a.agent_type, name=a.name, config=a.config))
        for a in agents
    ]
    signals.experiment_created.send(sender=Experiment, experiment=experiment, runs=[i.run for i in issued], by=by)
    return experiment, issued


_UNSET = object()


@transaction.atomic
def update_experiment(*, experiment: Experiment, by, name=_UNSET, description=_UNSET, config=_UNSET) -> Experiment:
    """Change name and description in any status, config only before the start."""
    experiment = lock(experiment)
    changes = {}
    if name is not _UNSET and name != experiment.name:
        changes["name"] = name
    if description is not _UNSET and description != experiment.description:
        changes["description"] = description
    if config is not _UNSET and config != experiment.config:
        if experiment.status != ExperimentStatus.CREATED:
            raise ConflictError(f"The config can only change before the start; this experiment is {experiment.status}.")
        changes["config"] = config
    if changes:
        for field, value in changes.items():
            setattr(experiment, field, value)
        experiment.save(update_fields=[*changes, "updated_at"])
        signals.experiment_updated.send(sender=Experiment, experiment=experiment, changes=changes, by=by)
    return experiment


@transaction.atomic
def add_run(*, experiment: Experiment, by, agent_type: str, name: str = "", config: dict | None = None) -> IssuedRun:
    experiment = lock(experiment)
    if experiment.status != ExperimentStatus.CREATED:
        raise ConflictError(f"Runs can only be added before the start; this experiment is {experiment.status}.")
    issued = IssuedRun(*build_run(experiment=experiment, agent_type=agent_type, name=name, config=config))
    run_signals.run_created.send(sender=AgentRun, run=issued.run, by=by, reopened=False)
    return issued


@transaction.atomic
def start_experiment(*, experiment: Experiment, by) -> Experiment:
    experiment = lock(experiment)
    if experiment.status != ExperimentStatus.CREATED:
        raise ConflictError(f"Only a created experiment can start; this one is {experiment.status}.")
    runs = list(experiment.runs.filter(status=RunStatus.PENDING))
    if not experiment.runs.exists():
        raise ConflictError("An experiment with no runs cannot start; add an agent first.")
    now = timezone.now()
    AgentRun.objects.filter(pk__in=[r.pk for r in runs]).update(status=RunStatus.STARTING, updated_at=now)
    for run in runs:
        run.status = RunStatus.STARTING
    experiment.status = ExperimentStatus.RUNNING
    experiment.started_at = now
    experiment.completed_at = None
    experiment.save(update_fields=["status", "started_at", "completed_at", "updated_at"])
    signals.experiment_started.send(sender=Experiment, experiment=experiment, runs=runs, by=by)
    # Runs stopped before the start leave nothing to run: the experiment is over at once.
    finish_if_done(experiment=experiment)
    return experiment


@transaction.atomic
def stop_experiment(*, experiment: Experiment, by) -> Experiment:
    experiment = lock(experiment)
    if experiment.status != ExperimentStatus.RUNNING:
        raise ConflictError(f"Only a running experiment can stop; this one is {experiment.status}.")
    now = timezone.now()
    unfinished = experiment.runs.select_for_update(no_key=True).exclude(status__in=TERMINAL_RUN_STATUSES)
    for run in unfinished:
        run.status = RunStatus.STOPPED
        run.stop_reason = "experiment_stopped"
        run.completed_at = now
        run.approval_deadline = None
        run.save(update_fields=["status", "stop_reason", "completed_at", "approval_deadline", "updated_at"])
        run_signals.run_stopped.send(sender=AgentRun, run=run, reason="experiment_stopped", by=by)
    experiment.status = ExperimentStatus.STOPPED
    experiment.completed_at = now
    experiment.save(update_fields=["status", "completed_at", "updated_at"])
    signals.experiment_stopped.send(sender=Experiment, experiment=experiment, by=by)
    return experiment


def final_status(statuses: Iterable[str]) -> str:
    """The status a finished experiment takes from its runs' final statuses.

    Any completed run makes it completed; otherwise any failure makes it failed; an
    experiment whose every run was stopped is stopped.
    """
    statuses = set(statuses)
    if RunStatus.COMPLETED in statuses:
        return ExperimentStatus.COMPLETED
    if RunStatus.FAILED in statuses:
        return ExperimentStatus.FAILED
    return ExperimentStatus.STOPPED


def finish_if_done(*, experiment: Experiment) -> bool:
    """Finish a running experiment whose every run is terminal. Call inside the change.

    Runs superseded by a retry count through their retry: the experiment's outcome is
    that of the latest attempt of each agent.
    """
    assert transaction.get_connection().in_atomic_block
    experiment = lock(experiment)
    if experiment.status != ExperimentStatus.RUNNING:
        return False
    latest = experiment.runs.filter(retried_by__isnull=True).values_list("status", flat=True)
    statuses = list(latest)
    if not statuses or any(s not in TERMINAL_RUN_STATUSES for s in statuses):
        return False
    experiment.status = final_status(statuses)
    experiment.completed_at = timezone.now()
    experiment.save(update_fields=["status", "completed_at", "updated_at"])
    signals.experiment_finished.send(sender=Experiment, experiment=experiment)
    return True


def reopen_for_retry(*, experiment: Experiment) -> bool:
    """A retry on a finished experiment puts it back to running. Call inside the change."""
    assert transaction.get_connection().in_atomic_block
    if not experiment.is_finished:
        return False
    experiment.status = ExperimentStatus.RUNNING
    experiment.completed_at = None
    experiment.save(update_fields=["status", "completed_at", "updated_at"])
    return True


@transaction.atomic
def delete_experiment(*, experiment: Experiment, by) -> None:
    experiment = lock(experiment)
    if experiment.status == ExperimentStatus.RUNNING:
        raise ConflictError("A running experiment cannot be deleted; stop it first.")
    signals.experiment_deleted.send(sender=Experiment, experiment=experiment, by=by)
    experiment.delete()
