"""Domain signals → stored events (and, after commit, layer messages).

One receiver per signal, each only shaping the event's ``data``: no business rules live
here. The event shapes are listed in docs/websocket.md.
"""

from django.db import transaction
from django.dispatch import receiver

from agents import signals as run_signals
from experiments import signals as experiment_signals
from experiments.models import ExperimentStatus, Membership
from experiments.timestamps import format_timestamp
from realtime.bodies import experiment_body, run_body
from realtime.publish import publish_access_change, publish_control
from realtime.store import record_event

LOG_LINES_IN_EVENT = 100
LOG_MESSAGE_CHARS_IN_EVENT = 2000
ERROR_LEVELS = ("error", "critical")


def _username(user) -> str | None:
    return getattr(user, "username", None)


def _run_event(run, event_type: str, **data):
    return record_event(
        event_type=event_type,
        experiment_id=run.experiment.public_id,
        run_id=run.public_id,
        data={"run_id": run.public_id, "agent_type": run.agent_type, **data},
    )


def _control_on_commit(run, round_key=None, **control) -> None:
    message = {"type": "control", **control}
    run_id = run.public_id
    transaction.on_commit(lambda: publish_control(run_id=run_id, control=message, round_key=round_key))


# Experiments -----------------------------------------------------------------------------


@receiver(experiment_signals.experiment_created)
def on_experiment_created(sender, experiment, runs, by, **kwargs):
    record_event(
        event_type="experiment_created",
        experiment_id=experiment.public_id,
        data=experiment_body(experiment),
    )


@receiver(experiment_signals.experiment_updated)
def on_experiment_updated(sender, experiment, changes, by, **kwargs):
    record_event(event_type="experiment_updated", experiment_id=experiment.public_id, data=dict(changes))


@receiver(experiment_signals.experiment_started)
def on_experiment_started(sender, experiment, runs, by, **kwargs):
    record_event(
        event_type="experiment_started",
        experiment_id=experiment.public_id,
        data={
            "name": experiment.name,
            "total_agents": experiment.runs.count(),
            "config": experiment.config,
            "status": experiment.status,
            "started_at": format_timestamp(experiment.started_at),
            "runs": [{"run_id": r.public_id, "status": r.status} for r in runs],
        },
    )


@receiver(experiment_signals.experiment_stopped)
def on_experiment_stopped(sender, experiment, by, **kwargs):
    record_event(
        event_type="experiment_stopped",
        experiment_id=experiment.public_id,
        data={
            "status": experiment.status,
            "completed_at": format_timestamp(experiment.completed_at),
            "by": _username(by),
        },
    )


@receiver(experiment_signals.experiment_finished)
def on_experiment_finished(sender, experiment, **kwargs):
    # Every run stopped one by one: the experiment is stopped, and says so.
    event_type = "experiment_stopped" if experiment.status == ExperimentStatus.STOPPED else "experiment_completed"
    counts = {}
    for status in experiment.runs.filter(retried_by__isnull=True).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    record_event(
        event_type=event_type,
        experiment_id=experiment.public_id,
        data={
            "status": experiment.status,
            "completed_at": format_timestamp(experiment.completed_at),
            "runs_by_status": counts,
        },
    )


@receiver(experiment_signals.experiment_deleted)
def on_experiment_deleted(sender, experiment, by, **kwargs):
    # Sent before the rows go: the members who may still hear of it travel with it.
    members = list(Membership.objects.filter(experiment=experiment).values_list("user_id", flat=True))
    record_event(
        event_type="experiment_deleted",
        experiment_id=experiment.public_id,
        data={"id": experiment.public_id, "name": experiment.name, "by": _username(by)},
        audience=members,
    )
    experiment_id = experiment.public_id
    transaction.on_commit(lambda: publish_access_change(experiment_id=experiment_id, user_id=None))


@receiver(experiment_signals.membership_changed)
def on_membership_changed(sender, experiment, user, role, by, **kwargs):
    # Not an event of the experiment's stream: open sockets re-check who may see it.
    experiment_id, user_id = experiment.public_id, user.pk
    transaction.on_commit(lambda: publish_access_change(experiment_id=experiment_id, user_id=user_id))


@receiver(experiment_signals.runtime_config_changed)
def on_runtime_config_changed(sender, values, changed, by, **kwargs):
    record_event(
        event_type="config_updated",
        data={"config": values, "changed": changed, "by": _username(by)},
    )


# Runs ------------------------------------------------------------------------------------


@receiver(run_signals.run_created)
def on_run_created(sender, run, by, reopened, **kwargs):
    experiment = run.experiment
    data = {"added_run": run_body(run), "total_agents": experiment.runs.count()}
    if reopened:
        data["status"] = experiment.status
        data["completed_at"] = None
    record_event(event_type="experiment_updated", experiment_id=experiment.public_id, data=data)


@receiver(run_signals.run_initialized)
def on_run_initialized(sender, run, **kwargs):
    _run_event(
        run,
        "agent_initialized",
        name=run.name,
        status=run.status,
        attempt=run.attempt,
        started_at=format_timestamp(run.started_at),
    )


@receiver(run_signals.run_progressed)
def on_run_progressed(sender, run, **kwargs):
    _run_event(
        run,
        "agent_progress",
        progress_percent=run.progress_percent,
        current_action=run.current_action,
        metrics=run.metrics,
    )


@receiver(run_signals.run_completed)
def on_run_completed(sender, run, **kwargs):
    _run_event(
        run,
        "agent_completed",
        status=run.status,
        progress_percent=run.progress_percent,
        result=run.result,
        metrics=run.metrics,
        completed_at=format_timestamp(run.completed_at),
    )


@receiver(run_signals.run_failed)
def on_run_failed(sender, run, reason, **kwargs):
    _run_event(
        run,
        "agent_failed",
        status=run.status,
        error=run.error,
        reason=reason,
        completed_at=format_timestamp(run.completed_at),
    )
    if reason == "approval_timeout":
        _control_on_commit(run, action="stop", reason=reason)


@receiver(run_signals.run_stopped)
def on_run_stopped(sender, run, reason, by, **kwargs):
    _run_event(
        run,
        "agent_stopped",
        status=run.status,
        reason=reason,
        by=_username(by),
        completed_at=format_timestamp(run.completed_at),
    )
    # After a rejection the agent hears "rejected" (plan_decided) and then this "stop".
    _control_on_commit(run, action="stop", reason=reason)


@receiver(run_signals.plan_submitted)
def on_plan_submitted(sender, run, **kwargs):
    _run_event(run, "plan_ready", plan=run.plan, status=run.status)
    approval = run.approval or {}
    _run_event(
        run,
        "approval_required",
        plan=run.plan,
        deadline=approval.get("deadline"),
        timeout_seconds=approval.get("timeout_seconds"),
    )


@receiver(run_signals.plan_decided)
def on_plan_decided(sender, *, run, approved, feedback, revise, by, **kwargs):
    if approved:
        _run_event(run, "plan_approved", status=run.status, feedback=feedback, by=_username(by))
        control = {"action": "approved"}
    else:
        _run_event(
            run,
            "plan_rejected",
            status=run.status,
            feedback=feedback,
            revise=revise,
            by=_username(by),
        )
        control = {"action": "rejected", "revise": revise}
    if feedback:
        control["feedback"] = feedback
    _control_on_commit(run, round_key=(run.approval or {}).get("requested_at"), **control)


@receiver(run_signals.metrics_recorded)
def on_metrics_recorded(sender, run, latest, count, **kwargs):
    _run_event(
        run,
        "metrics_updated",
        metrics={name: point["value"] for name, point in latest.items()},
        steps={name: point["step"] for name, point in latest.items()},
        count=count,
    )


@receiver(run_signals.validation_recorded)
def on_validation_recorded(sender, run, **kwargs):
    validation = run.validation or {}
    _run_event(
        run,
        "validation_completed",
        passed=validation.get("passed"),
        details=validation.get("details"),
    )


@receiver(run_signals.logs_appended)
def on_logs_appended(sender, run, lines, count, **kwargs):
    shown = [
        {
            "level": line["level"],
            "message": line["message"][:LOG_MESSAGE_CHARS_IN_EVENT],
            "timestamp": format_timestamp(line["timestamp"]),
        }
        for line in lines[:LOG_LINES_IN_EVENT]
    ]
    truncated = count > len(shown) or any(
        len(line["message"]) > LOG_MESSAGE_CHARS_IN_EVENT for line in lines[:LOG_LINES_IN_EVENT]
    )
    _run_event(run, "log_appended", count=count, lines=shown, truncated=truncated)
    errors = [line for line in lines if line["level"] in ERROR_LEVELS]
    if errors:
        first = errors[0]
        _run_event(
            run,
            "error_occurred",
            level=first["level"],
            message=first["message"][:LOG_MESSAGE_CHARS_IN_EVENT],
            count=len(errors),
        )
