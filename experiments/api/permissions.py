"""Roles on an experiment: viewer < operator < owner; staff may do everything.

Querysets are already scoped to the caller's experiments (a non-member gets 404 from
the lookup itself), so these checks only ever answer 403 to members whose role is too low.
"""

from rest_framework.exceptions import NotFound, PermissionDenied

from experiments.models import ROLE_RANK, Experiment, Role


def role_allows(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def require_role(experiment: Experiment, user, minimum: str) -> str:
    role = experiment.role_of(user)
    if role is None:
        raise NotFound("Not found.")
    if not role_allows(role, minimum):
        raise PermissionDenied(f"This needs the {minimum} role on the experiment; you are {role}.")
    return role


ACTION_ROLES = {
    "view": Role.VIEWER,
    "start": Role.OPERATOR,
    "stop": Role.OPERATOR,
    "approve": Role.OPERATOR,
    "stop_run": Role.OPERATOR,
    "retry_run": Role.OPERATOR,
    "reissue_token": Role.OPERATOR,
    "export": Role.OPERATOR,
    "edit": Role.OWNER,
    "add_run": Role.OWNER,
    "delete": Role.OWNER,
    "manage_members": Role.OWNER,
}
