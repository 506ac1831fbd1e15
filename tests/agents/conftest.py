"""Fixtures for the agent tests: a running experiment whose agents hold their tokens.

alice owns the experiment, bob operates it, charlie views it, dave is no member.
"""

from dataclasses import dataclass

import pytest

from agents.models import AgentRun
from experiments.models import Experiment, Role
from realtime.models import Event
from tests.factories import agent_client, make_experiment, started_experiment
from tests.live import daphne_server, live_database_template, shared_daphne_server  # noqa: F401 (fixtures)


@dataclass
class Agent:
    """One run as its agent sees it: its id, its token and a client that sends it."""

    run: AgentRun
    token: str

    @property
    def id(self) -> str:
        return self.run.public_id

    @property
    def client(self):
        return agent_client(self.token)

    def post(self, kind: str, body, **headers):
        return self.client.post(f"/api/research/agents/{self.id}/{kind}", body, format="json", **headers)

    def fresh(self) -> AgentRun:
        return AgentRun.objects.get(pk=self.run.pk)


def event_types(experiment: Experiment, *, run: str | None = None) -> list[str]:
    """The experiment's stored event types in seq order (only the run's, when given)."""
    events = Event.objects.filter(experiment_id=experiment.public_id).order_by("seq")
    if run is not None:
        events = events.filter(run_id=run)
    return list(events.values_list("event_type", flat=True))


def run_events(agent: Agent, event_type: str) -> list[Event]:
    return list(Event.objects.filter(run_id=agent.id, event_type=event_type).order_by("seq"))


@pytest.fixture
def team(alice, bob, charlie, dave):
    return {"owner": alice, "operator": bob, "viewer": charlie, "outsider": dave}


def _agents(issued) -> list[Agent]:
    return [Agent(run=item.run, token=item.token) for item in issued]


@pytest.fixture
def experiment_and_agents(team):
    experiment, issued = started_experiment(
        team["owner"], members={team["operator"]: Role.OPERATOR, team["viewer"]: Role.VIEWER}
    )
    return experiment, _agents(issued)


@pytest.fixture
def experiment(experiment_and_agents):
    return experiment_and_agents[0]


@pytest.fixture
def agent(experiment_and_agents):
    """The first agent of a running experiment; its run is ``starting``."""
    return experiment_and_agents[1][0]


@pytest.fixture
def other_agent(experiment_and_agents):
    return experiment_and_agents[1][1]


@pytest.fixture
def pending_agent(team):
    _experiment, issued = make_experiment(team["owner"], agents=1)
    return _agents(issued)[0]
