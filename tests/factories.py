"""Small factories for tests: users, experiments and runs in any status, API clients."""

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agents import approval, reporting
from agents import lifecycle as run_lifecycle
from agents.models import RunStatus
from experiments import lifecycle
from experiments.models import ExperimentStatus, Membership

PASSWORD = "correct-horse-battery"


def make_user(username: str, *, staff: bool = False):
    return get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_staff=staff, email=f"{username}@example.com"
    )


def token_for(user) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def api_client(user=None) -> APIClient:
    """An API client authenticated with the user's API token (anonymous for None)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def agent_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def make_experiment(
    owner,
    *,
    name: str = "Experiment",
    agents: int = 2,
    members: dict | None = None,
    config: dict | None = None,
    agent_type: str = "claude_code",
):
    """An experiment owned by ``owner`` with ``agents`` pending runs; returns (experiment, issued)."""
    experiment, issued = lifecycle.create_experiment(
        name=name,
        by=owner,
        config=config or {},
        agents=[lifecycle.RunSpec(agent_type=agent_type, name=f"agent-{i}") for i in range(agents)],
    )
    for user, role in (members or {}).items():
        Membership.objects.create(experiment=experiment, user=user, role=role)
    return experiment, issued


def started_experiment(owner, **kwargs):
    experiment, issued = make_experiment(owner, **kwargs)
    experiment = lifecycle.start_experiment(experiment=experiment, by=owner)
    for item in issued:
        item.run.refresh_from_db()
    return experiment, issued


def make_running(run):
    """The run's first report moves it from starting to running."""
    return reporting.record_progress(run=run, progress_percent=10.0, current_action="working")


def run_in_status(owner, status: str, **kwargs):
    """A run of a two-run experiment driven to ``status`` through the services.

    The other run stays unfinished, so the experiment is still running (or created for a
    pending run). Returns (experiment, run, token).
    """
    if status == RunStatus.PENDING:
        experiment, issued = make_experiment(owner, **kwargs)
    else:
        experiment, issued = started_experiment(owner, **kwargs)
    run, token = issued[0].run, issued[0].token
    if status in (RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL, RunStatus.COMPLETED, RunStatus.FAILED):
        run = make_running(run)
    if status == RunStatus.AWAITING_APPROVAL:
        run = approval.submit_plan(run=run, plan={"steps": ["read", "write"]})
    elif status == RunStatus.COMPLETED:
        run = reporting.complete(run=run, result={"answer": 42})
    elif status == RunStatus.FAILED:
        run = reporting.report_failure(run=run, error="boom")
    elif status == RunStatus.STOPPED:
        run = run_lifecycle.stop_run(run=run, by=owner)
    run.refresh_from_db()
    experiment.refresh_from_db()
    return experiment, run, token


def experiment_in_status(owner, status: str, **kwargs):
    """An experiment driven to ``status`` through the services; returns (experiment, issued)."""
    if status == ExperimentStatus.CREATED:
        return make_experiment(owner, **kwargs)
    experiment, issued = started_experiment(owner, **kwargs)
    if status == ExperimentStatus.STOPPED:
        lifecycle.stop_experiment(experiment=experiment, by=owner)
    elif status in (ExperimentStatus.COMPLETED, ExperimentStatus.FAILED):
        for item in issued:
            run = make_running(item.run)
            if status == ExperimentStatus.COMPLETED:
                reporting.complete(run=run)
            else:
                reporting.report_failure(run=run, error="boom")
    experiment.refresh_from_db()
    for item in issued:
        item.run.refresh_from_db()
    assert experiment.status == status
    return experiment, issued
