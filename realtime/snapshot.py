"""What a socket sees first, and who may see what (synchronous; call through
``database_sync_to_async``).

A snapshot's ``seq`` is read before its bodies, inside one repeatable-read transaction on
PostgreSQL, so the bodies reflect at least every event up to ``seq``; the events after it
follow on the socket. (On SQLite the reads are separate statements; event data is
absolute state, so an event applied to a body that already has it changes nothing.)
"""

import threading
import time
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from agents.api.serializers import run_representation
from agents.models import AgentRun
from experiments import system
from experiments.api.serializers import experiment_representation
from experiments.models import Experiment, ExperimentStatus, Membership, Role
from realtime.replay import stream_state
from realtime.store import last_event_id

STATUS_CACHE_SECONDS = 1.0


@contextmanager
def consistent_read():
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    else:
        yield


def viewers_of(experiment_id: str) -> dict[int, str] | None:
    """The role of each member, by user id (staff see it too); None if it does not exist."""
    pk = Experiment.objects.filter(public_id=experiment_id).values_list("pk", flat=True).first()
    if pk is None:
        return None
    return dict(Membership.objects.filter(experiment_id=pk).values_list("user_id", "role"))


def user_can_view(user_id: int, is_staff: bool, experiment_id: str) -> bool:
    viewers = viewers_of(experiment_id)
    return viewers is not None and (is_staff or user_id in viewers)


def visible_experiment_ids(user) -> set[str] | None:
    """Public ids the user may see; None means all (staff)."""
    if user.is_staff:
        return None
    return set(Experiment.objects.visible_to(user).values_list("public_id", flat=True))


def experiment_snapshot(experiment_id: str, user) -> dict | None:
    """``{"type": "snapshot", "experiment", "runs", "seq"}``, or None if not visible."""
    if not Experiment.objects.visible_to(user).filter(public_id=experiment_id).exists():
        return None
    shared = shared_experiment_snapshot(experiment_id)
    if shared is None:
        return None
    return with_role(shared, role_in(viewers_of(experiment_id), user))


def role_in(viewers: dict | None, user) -> str | None:
    """The user's role among ``viewers`` (staff act as owners)."""
    if user.is_staff:
        return Role.OWNER
    return (viewers or {}).get(user.pk)


def shared_experiment_snapshot(experiment_id: str) -> dict | None:
    """The snapshot as every member sees it, without the caller's ``role``.

    The same for all sockets of an experiment until its next event, so the hub shares
    one among the sockets that open meanwhile (``Hub.experiment_snapshot``).
    """
    with consistent_read():
        seq, _pruned = stream_state(experiment_id)
        experiment = Experiment.objects.select_related("created_by").filter(public_id=experiment_id).first()
        if experiment is None:
            return None
        runs = list(
            AgentRun.objects.filter(experiment=experiment).select_related("retry_of").order_by("created_at", "id")
        )
    body = experiment_representation(experiment, runs=runs, include_runs=False)
    return {
        "type": "snapshot",
        "experiment": body,
        "runs": [run_representation(run) for run in runs],
        "seq": seq,
    }


def with_role(shared: dict, role: str | None) -> dict:
    """A socket's copy of a shared snapshot, carrying the caller's role."""
    experiment = dict(shared["experiment"])
    if role is not None:
        experiment["role"] = role
    return {**shared, "experiment": experiment}


def global_snapshot(user) -> dict:
    """``{"type": "snapshot", "status", "experiments", "last_event_id"}``."""
    last_id = last_event_id()
    running = (
        Experiment.objects.visible_to(user)
        .filter(status=ExperimentStatus.RUNNING)
        .select_related("created_by")
        .prefetch_related("runs")
        .order_by("-created_at", "-id")
        .distinct()
    )
    roles = {}
    if not user.is_staff:
        roles = dict(Membership.objects.filter(user=user, experiment__in=running).values_list("experiment_id", "role"))
    experiments = [
        experiment_representation(e, role=roles.get(e.pk, "owner" if user.is_staff else None), include_runs=False)
        for e in running
    ]
    return {
        "type": "snapshot",
        "status": {**shared_status(), "experiments": system.experiment_counts(user)},
        "experiments": experiments,
        "last_event_id": last_id,
    }


_status_cache: dict = {"at": -STATUS_CACHE_SECONDS, "body": None}
_status_lock = threading.Lock()


def shared_status() -> dict:
    """The part of ``GET status`` that is the same for everyone, at most a second old.

    A thousand sockets opening at once would otherwise make a thousand database and
    channel-layer round trips to report the same health.
    """
    with _status_lock:
        now = time.monotonic()
        if now - _status_cache["at"] >= STATUS_CACHE_SECONDS:
            _status_cache["body"] = system.shared_status()
            _status_cache["at"] = now
        return dict(_status_cache["body"])


def refresh_user(user_id: int):
    """The socket's user as stored now (a removed or deactivated user loses the stream)."""
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def run_snapshot(run_pk: int) -> dict | None:
    run = AgentRun.objects.select_related("experiment", "retry_of").filter(pk=run_pk).first()
    if run is None:
        return None
    return {"type": "snapshot", "run": run_representation(run)}


def agent_run_states(run_ids: list[str]) -> dict[str, tuple[str, dict | None]]:
    """(status, approval) per run, for repairing lost control messages."""
    rows = AgentRun.objects.filter(public_id__in=run_ids).values_list("public_id", "status", "approval")
    return {public_id: (status, approval) for public_id, status, approval in rows}
