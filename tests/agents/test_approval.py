"""Plan approval: approve, reject, reject for revision, and the timeout that fires once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.approval import expire_overdue_approvals
from agents.models import AgentRun, RunStatus
from experiments.models import ExperimentStatus, Role
from realtime.models import Event
from tests import services
from tests.agents.conftest import Agent, event_types, run_events
from tests.factories import api_client, make_user, started_experiment

PLAN = {"plan": {"steps": ["read the code", "change it", "run the tests"]}}


def approve(user, agent, **body):
    return api_client(user).post(f"/api/research/agents/{agent.id}/approve", body, format="json")


def overdue(agent, seconds: float = 1.0):
    """Move the stored deadline into the past, as if the timeout had elapsed."""
    deadline = timezone.now() - timedelta(seconds=seconds)
    AgentRun.objects.filter(pk=agent.run.pk).update(approval_deadline=deadline)
    return deadline


def failures(agent) -> list[Event]:
    return run_events(agent, "agent_failed")


@pytest.fixture
def waiting(agent):
    """The agent has submitted a plan and waits for a decision."""
    assert agent.post("plan", PLAN).status_code == 200
    return agent


# Decisions -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_operator_approves_and_the_run_goes_back_to_running(experiment, waiting, team):
    response = approve(team["operator"], waiting, approved=True, feedback="Go ahead")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "running"
    assert body["approval"]["state"] == "approved"
    assert body["approval"]["decided_by"] == "bob"
    assert body["approval"]["feedback"] == "Go ahead"
    assert body["plan"] == PLAN["plan"]
    [event] = run_events(waiting, "plan_approved")
    assert event.data["feedback"] == "Go ahead"
    assert event.data["by"] == "bob"
    assert waiting.post("progress", {"progress_percent": 50}).status_code == 200


@pytest.mark.django_db
def test_a_rejection_stops_the_run_with_plan_rejected(experiment, waiting, team):
    response = approve(team["owner"], waiting, approved=False, feedback="Too risky")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "stopped"
    assert body["stop_reason"] == "plan_rejected"
    assert body["approval"]["state"] == "rejected"
    assert body["approval"]["feedback"] == "Too risky"
    assert event_types(experiment, run=waiting.id)[-2:] == ["plan_rejected", "agent_stopped"]
    [stopped] = run_events(waiting, "agent_stopped")
    assert stopped.data["reason"] == "plan_rejected"
    assert waiting.post("progress", {"progress_percent": 50}).status_code == 409


@pytest.mark.django_db
def test_a_rejection_of_the_last_run_finishes_the_experiment(team):
    experiment, issued = started_experiment(team["owner"], agents=1)
    agent = Agent(run=issued[0].run, token=issued[0].token)
    agent.post("plan", PLAN)

    approve(team["owner"], agent, approved=False)

    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.STOPPED


@pytest.mark.django_db
def test_a_rejection_for_revision_returns_the_run_to_running_with_the_feedback(waiting, team):
    response = approve(team["operator"], waiting, approved=False, revise=True, feedback="Add tests first")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "running"
    assert body["approval"]["state"] == "revision_requested"
    assert body["approval"]["revise"] is True
    assert body["approval"]["feedback"] == "Add tests first"
    [rejected] = run_events(waiting, "plan_rejected")
    assert rejected.data["revise"] is True
    assert rejected.data["feedback"] == "Add tests first"
    assert not run_events(waiting, "agent_stopped")

    second = waiting.post("plan", {"plan": {"steps": ["write tests", "change it"]}})

    assert second.status_code == 200
    assert second.json()["status"] == "awaiting_approval"
    assert second.json()["approval"]["state"] == "pending"
    assert second.json()["approval"]["feedback"] is None
    assert approve(team["operator"], waiting, approved=True).json()["status"] == "running"


@pytest.mark.django_db
def test_approve_with_revise_is_an_approval(waiting, team):
    body = approve(team["operator"], waiting, approved=True, revise=True).json()

    assert body["status"] == "running"
    assert body["approval"]["state"] == "approved"


@pytest.mark.django_db
def test_staff_may_decide(waiting, staff):
    assert approve(staff, waiting, approved=True).status_code == 200


@pytest.mark.django_db
def test_a_viewer_may_not_decide(waiting, team):
    response = approve(team["viewer"], waiting, approved=True)

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert waiting.fresh().status == RunStatus.AWAITING_APPROVAL


@pytest.mark.django_db
def test_a_non_member_gets_404(waiting, team):
    response = approve(team["outsider"], waiting, approved=True)

    assert response.status_code == 404
    assert waiting.fresh().status == RunStatus.AWAITING_APPROVAL


@pytest.mark.django_db
def test_the_agent_cannot_approve_its_own_plan(waiting):
    response = waiting.client.post(f"/api/research/agents/{waiting.id}/approve", {"approved": True})

    assert response.status_code in (401, 403)
    assert waiting.fresh().status == RunStatus.AWAITING_APPROVAL


@pytest.mark.django_db
def test_a_decision_without_a_plan_waiting_is_409(agent, team):
    agent.post("progress", {"progress_percent": 1})

    response = approve(team["operator"], agent, approved=True)

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


@pytest.mark.django_db
def test_a_second_decision_is_409(waiting, team):
    approve(team["operator"], waiting, approved=True)

    assert approve(team["operator"], waiting, approved=False).status_code == 409
    assert waiting.fresh().status == RunStatus.RUNNING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "approved"),
        ({"approved": "yes"}, "approved"),
        ({"approved": False, "revise": "no"}, "revise"),
        ({"approved": False, "feedback": 3}, "feedback"),
        ({"approved": False, "feedback": "x" * 10_001}, "feedback"),
        ({"approved": True, "mood": "good"}, "mood"),
    ],
)
def test_a_bad_decision_body_is_400(waiting, team, body, field):
    response = approve(team["operator"], waiting, **body)

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert waiting.fresh().status == RunStatus.AWAITING_APPROVAL


# The timeout -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_deadline_is_stored_from_the_runtime_config(agent, staff):
    assert api_client(staff).post("/api/research/config", {"approval_timeout_seconds": 5}).status_code == 200

    body = agent.post("plan", PLAN).json()

    run = agent.fresh()
    requested = run.approval_deadline - timedelta(seconds=5)
    assert abs((requested - timezone.now()).total_seconds()) < 5
    assert body["approval"]["timeout_seconds"] == 5
    assert body["approval"]["deadline"].endswith("Z")
    [required] = run_events(agent, "approval_required")
    assert required.data["timeout_seconds"] == 5
    assert required.data["deadline"] == body["approval"]["deadline"]


@pytest.mark.django_db
def test_an_overdue_plan_fails_the_run_with_approval_timeout_once(experiment, waiting):
    overdue(waiting)

    assert expire_overdue_approvals() == 1
    assert expire_overdue_approvals() == 0

    run = waiting.fresh()
    assert run.status == RunStatus.FAILED
    assert "approval_timeout" in run.error
    assert run.approval["state"] == "timed_out"
    [failed] = failures(waiting)
    assert failed.data["reason"] == "approval_timeout"
    assert "approval_timeout" in failed.data["error"]
    assert event_types(experiment, run=waiting.id)[-1] == "agent_failed"
    assert waiting.post("progress", {"progress_percent": 1}).status_code == 409


@pytest.mark.django_db
def test_a_plan_before_its_deadline_is_left_alone(waiting):
    assert expire_overdue_approvals() == 0
    assert waiting.fresh().status == RunStatus.AWAITING_APPROVAL


@pytest.mark.django_db
def test_the_timeout_finishes_an_experiment_whose_last_run_it_was(team):
    experiment, issued = started_experiment(team["owner"], agents=1)
    agent = Agent(run=issued[0].run, token=issued[0].token)
    agent.post("plan", PLAN)
    overdue(agent)

    expire_overdue_approvals()

    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FAILED


@pytest.mark.django_db
def test_a_decision_before_the_deadline_wins_and_the_timeout_never_fires(waiting, team):
    assert approve(team["operator"], waiting, approved=True).status_code == 200
    # A sweep whose clock is past the old deadline finds nothing to do.
    later = timezone.now() + timedelta(seconds=600)

    assert expire_overdue_approvals(now=later) == 0

    assert waiting.fresh().status == RunStatus.RUNNING
    assert not failures(waiting)
    assert len(run_events(waiting, "plan_approved")) == 1


@pytest.mark.django_db
def test_a_timeout_before_the_decision_wins_and_the_decision_is_409(waiting, team):
    overdue(waiting)
    assert expire_overdue_approvals() == 1

    response = approve(team["operator"], waiting, approved=True)

    assert response.status_code == 409
    assert waiting.fresh().status == RunStatus.FAILED
    assert not run_events(waiting, "plan_approved")
    assert len(failures(waiting)) == 1


@pytest.mark.django_db
def test_a_late_decision_before_any_sweep_loses_to_the_timeout(waiting, team):
    """No sweeper ran yet (the server was busy or down): the deadline still rules."""
    overdue(waiting)

    response = approve(team["operator"], waiting, approved=True)

    assert response.status_code == 409
    run = waiting.fresh()
    assert run.status == RunStatus.FAILED
    assert "approval_timeout" in run.error
    assert len(failures(waiting)) == 1
    assert expire_overdue_approvals() == 0


@pytest.mark.django_db
def test_reading_an_overdue_run_shows_it_failed(waiting, team):
    overdue(waiting)

    body = api_client(team["viewer"]).get(f"/api/research/agents/{waiting.id}").json()

    assert body["status"] == "failed"
    assert "approval_timeout" in body["error"]
    assert len(failures(waiting)) == 1


@pytest.mark.django_db
def test_the_deadline_survives_a_restart(waiting):
    """Nothing but the stored deadline is needed: a process that starts after the deadline
    (no timer, no memory of the plan) fails the run on its first sweep."""
    deadline = waiting.fresh().approval_deadline
    assert deadline is not None
    # (tests/agents/test_client_live.py restarts a real daphne across the deadline.)

    assert expire_overdue_approvals(now=deadline - timedelta(seconds=1)) == 0
    assert expire_overdue_approvals(now=deadline + timedelta(seconds=1)) == 1

    assert waiting.fresh().status == RunStatus.FAILED
    assert len(failures(waiting)) == 1


@pytest.mark.django_db
def test_a_stopped_run_never_times_out(waiting, team):
    api_client(team["operator"]).post(f"/api/research/agents/{waiting.id}/stop")

    assert expire_overdue_approvals(now=timezone.now() + timedelta(days=1)) == 0
    assert waiting.fresh().status == RunStatus.STOPPED
    assert waiting.fresh().approval_deadline is None


# Races on PostgreSQL: several sweepers, a decision against a sweeper ---------------------


@pytest.fixture
def pg_team(transactional_db):
    services.require_test_database_on_postgres()
    owner, operator = make_user("pg-owner"), make_user("pg-operator")
    return owner, operator


def _waiting_agents(owner, operator, count: int) -> list[Agent]:
    _experiment, issued = started_experiment(owner, agents=count, members={operator: Role.OPERATOR})
    agents = [Agent(run=item.run, token=item.token) for item in issued]
    for agent in agents:
        assert agent.post("plan", PLAN).status_code == 200
    return agents


def _together(*calls):
    """Run the calls in threads released at the same instant; returns their results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # surfaced by the assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.postgres
def test_concurrent_sweepers_fail_each_overdue_run_exactly_once(pg_team):
    owner, operator = pg_team
    agents = _waiting_agents(owner, operator, 6)
    for agent in agents:
        overdue(agent)

    results = _together(*[expire_overdue_approvals for _ in range(4)])

    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 6
    for agent in agents:
        assert agent.fresh().status == RunStatus.FAILED
        assert len(failures(agent)) == 1


@pytest.mark.postgres
def test_a_decision_racing_the_sweeper_has_exactly_one_outcome(pg_team):
    owner, operator = pg_team
    outcomes = set()
    for _round in range(8):
        [agent] = _waiting_agents(owner, operator, 1)
        deadline = agent.fresh().approval_deadline

        def decide(agent=agent):
            return approve(operator, agent, approved=True).status_code

        def sweep(deadline=deadline):
            return expire_overdue_approvals(now=deadline + timedelta(seconds=1))

        decided, expired = _together(decide, sweep)

        run = agent.fresh()
        approved = run_events(agent, "plan_approved")
        failed = failures(agent)
        if decided == 200:
            assert expired == 0
            assert run.status == RunStatus.RUNNING
            assert len(approved) == 1
            assert not failed
            outcomes.add("decision")
        else:
            assert decided == 409
            assert expired == 1
            assert run.status == RunStatus.FAILED
            assert not approved
            assert len(failed) == 1
            outcomes.add("timeout")
    assert outcomes  # which wins each round is up to the scheduler; never both
