"""Small factories for tests: users, experiments with runs, API clients."""

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from experiments import lifecycle
from experiments.models import Membership

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
