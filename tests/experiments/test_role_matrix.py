"""Who may do what: owner, operator, viewer, non-member and staff × every endpoint.

A member whose role is too low gets 403; a non-member gets 404 for the experiment and
everything under it, never 403, so existence never leaks; staff may do everything.
Each case builds the state in which the action is legal, so "allowed" means it succeeded.
"""

import pytest

from agents.models import RunStatus
from experiments.models import ROLE_RANK, Role
from tests.factories import experiment_in_status, make_experiment, run_in_status

ANY, STAFF = "any signed-in user", "staff"
ROLES = ["owner", "operator", "viewer", "non_member", "staff"]


def experiment(status="created"):
    def build(owner, members):
        return experiment_in_status(owner, status, members=members)[0].public_id

    return build


def run(status):
    def build(owner, members):
        return run_in_status(owner, status, members=members)[1].public_id

    return build


def nothing(owner, members):
    make_experiment(owner, members=members)


# name, the least role allowed, what to build, method, path, body, success status
ENDPOINTS = [
    ("detail", Role.VIEWER, experiment(), "get", "experiments/{}", None, 200),
    ("patch", Role.OWNER, experiment(), "patch", "experiments/{}", {"name": "New"}, 200),
    ("delete", Role.OWNER, experiment(), "delete", "experiments/{}", None, 204),
    ("start", Role.OPERATOR, experiment(), "post", "experiments/{}/start", None, 200),
    ("stop", Role.OPERATOR, experiment("running"), "post", "experiments/{}/stop", None, 200),
    ("add run", Role.OWNER, experiment(), "post", "experiments/{}/agents", {"agent_type": "codex"}, 201),
    ("members", Role.VIEWER, experiment(), "get", "experiments/{}/members", None, 200),
    (
        "set member",
        Role.OWNER,
        experiment(),
        "post",
        "experiments/{}/members",
        {"username": "charlie", "role": "operator"},
        200,
    ),
    ("remove member", Role.OWNER, experiment(), "delete", "experiments/{}/members/charlie", None, 204),
    ("results", Role.VIEWER, experiment("running"), "get", "results/{}", None, 200),
    ("metrics", Role.VIEWER, experiment("running"), "get", "metrics/{}", None, 200),
    ("export", Role.OPERATOR, experiment("running"), "post", "export/{}", {"format": "csv"}, 200),
    ("run detail", Role.VIEWER, run(RunStatus.RUNNING), "get", "agents/{}", None, 200),
    ("run logs", Role.VIEWER, run(RunStatus.RUNNING), "get", "agents/{}/logs", None, 200),
    ("stop run", Role.OPERATOR, run(RunStatus.RUNNING), "post", "agents/{}/stop", None, 200),
    ("retry run", Role.OPERATOR, run(RunStatus.FAILED), "post", "agents/{}/retry", None, 201),
    ("reissue token", Role.OPERATOR, run(RunStatus.RUNNING), "post", "agents/{}/token", None, 200),
    (
        "approve",
        Role.OPERATOR,
        run(RunStatus.AWAITING_APPROVAL),
        "post",
        "agents/{}/approve",
        {"approved": True},
        200,
    ),
    ("command start", Role.OPERATOR, experiment(), "post", "command", {"command": "start {}"}, 200),
    ("experiment list", ANY, nothing, "get", "experiments", None, 200),
    ("run list", ANY, nothing, "get", "agents", None, 200),
    ("events", ANY, nothing, "get", "events", None, 200),
    ("status", ANY, nothing, "get", "status", None, 200),
    ("ws-ticket", ANY, nothing, "post", "ws-ticket", None, 200),
    ("create", ANY, nothing, "post", "experiments", {"name": "Mine"}, 201),
    ("get config", STAFF, nothing, "get", "config", None, 200),
    ("post config", STAFF, nothing, "post", "config", {"approval_timeout_seconds": 60}, 200),
]


def expected_status(role: str, minimum: str, success: int) -> int:
    if role == "staff" or minimum == ANY:
        return success
    if minimum == STAFF:
        return 403
    if role == "non_member":
        return 404
    return success if ROLE_RANK[role] >= ROLE_RANK[minimum] else 403


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("minimum", "build", "method", "path", "body", "success"),
    [pytest.param(*endpoint[1:], id=endpoint[0]) for endpoint in ENDPOINTS],
)
def test_each_role_is_allowed_refused_403_or_hidden_404(
    client_for, team, members, role, minimum, build, method, path, body, success
):
    target = build(team["owner"], members)
    if body and "command" in body:
        body = {"command": body["command"].format(target)}
    url = "/api/research/" + path.format(target)
    response = getattr(client_for(team[role]), method)(url, body, format="json")
    expected = expected_status(role, minimum, success)
    assert response.status_code == expected, (role, url, getattr(response, "content", b"")[:300])
    if expected in (403, 404):
        assert response.json()["error"] == {403: "permission_denied", 404: "not_found"}[expected]
