"""POST experiments/{id}/agents: a new run before the start."""

import pytest

from agents.models import AgentRun
from agents.tokens import hash_token
from experiments.models import ExperimentStatus
from tests.experiments.recorded import events_of
from tests.factories import experiment_in_status, make_experiment


def url(experiment) -> str:
    return f"/api/research/experiments/{experiment.public_id}/agents"


def test_add_run_returns_201_with_a_pending_run_and_its_token(client_for, alice):
    experiment, _ = make_experiment(alice, agents=1)
    response = client_for(alice).post(url(experiment), {"agent_type": "codex", "name": "c", "config": {"k": 1}})
    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "pending"
    assert data["experiment_id"] == experiment.public_id
    assert data["config"] == {"k": 1}
    assert AgentRun.objects.get(public_id=data["id"]).token_hash == hash_token(data["token"])
    assert experiment.runs.count() == 2
    event = events_of(experiment)[-1]
    assert event.event_type == "experiment_updated"
    assert event.data["added_run"]["id"] == data["id"]
    assert event.data["total_agents"] == 2


def test_add_run_makes_a_run_less_experiment_startable(client_for, alice):
    experiment, _ = make_experiment(alice, agents=0)
    client_for(alice).post(url(experiment), {"agent_type": "codex"})
    response = client_for(alice).post(f"/api/research/experiments/{experiment.public_id}/start")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "status",
    [ExperimentStatus.RUNNING, ExperimentStatus.COMPLETED, ExperimentStatus.STOPPED, ExperimentStatus.FAILED],
)
def test_add_run_unless_created_is_409(client_for, alice, status):
    experiment, _ = experiment_in_status(alice, status)
    response = client_for(alice).post(url(experiment), {"agent_type": "codex"})
    assert response.status_code == 409
    assert experiment.runs.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "agent_type"),
        ({"agent_type": ""}, "agent_type"),
        ({"agent_type": 5}, "agent_type"),
        ({"agent_type": "has space"}, "agent_type"),
        ({"agent_type": "x" * 65}, "agent_type"),
        ({"agent_type": "x", "name": "n" * 201}, "name"),
        ({"agent_type": "x", "config": [1, 2]}, "config"),
        ({"agent_type": "x", "token": "mine"}, "token"),
    ],
)
def test_bad_run_body_is_400_and_adds_nothing(client_for, alice, body, field):
    experiment, _ = make_experiment(alice, agents=1)
    response = client_for(alice).post(url(experiment), body)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert experiment.runs.count() == 1
