"""Who may see and act on an experiment. Changes reach open sockets at once (realtime)."""

from django.contrib.auth import get_user_model
from django.db import transaction

from experiments import signals
from experiments.errors import ConflictError
from experiments.models import Experiment, Membership, Role


class UnknownUser(Exception):
    pass


@transaction.atomic
def set_member(*, experiment: Experiment, username: str, role: str, by) -> tuple[Membership, bool]:
    """Add a member or change their role; returns the membership and whether it is new."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise UnknownUser(username)
    if role == Role.OWNER:
        raise ConflictError("An experiment has one owner, its creator.")
    membership = Membership.objects.select_for_update().filter(experiment=experiment, user=user).first()
    if membership is None:
        membership = Membership.objects.create(experiment=experiment, user=user, role=role)
        created = True
    else:
        if membership.role == Role.OWNER:
            raise ConflictError("The owner's role cannot change.")
        created = False
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
    signals.membership_changed.send(sender=Membership, experiment=experiment, user=user, role=role, by=by)
    return membership, created


@transaction.atomic
def remove_member(*, experiment: Experiment, username: str, by) -> bool:
    """Remove a member; False when they were not one. The owner cannot be removed."""
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .filter(experiment=experiment, user__username=username)
        .first()
    )
    if membership is None:
        return False
    if membership.role == Role.OWNER:
        raise ConflictError("The owner cannot be removed from the experiment.")
    user = membership.user
    membership.delete()
    signals.membership_changed.send(sender=Membership, experiment=experiment, user=user, role=None, by=by)
    return True
