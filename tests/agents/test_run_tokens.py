"""Run tokens: each authorises its own run only, is stored hashed, and never reaches a log."""

import hashlib
import logging

import pytest
from django.db import connection

from agents.models import AgentRun
from tests.agents.conftest import Agent
from tests.factories import agent_client, api_client

pytestmark = pytest.mark.django_db

REPORTS = [
    ("progress", {"progress_percent": 10}),
    ("metrics", {"points": [{"name": "loss", "value": 1.0}]}),
    ("logs", {"lines": [{"level": "info", "message": "hi"}]}),
    ("plan", {"plan": "p"}),
    ("validation", {"passed": True}),
    ("complete", {}),
    ("fail", {"error": "x"}),
]


def everything_stored() -> str:
    """Every row of every table, as text (to search for a secret)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


@pytest.mark.parametrize(("kind", "body"), REPORTS)
def test_a_runs_token_cannot_report_on_another_run(agent, other_agent, kind, body):
    response = agent_client(agent.token).post(f"/api/research/agents/{other_agent.id}/{kind}", body, format="json")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert other_agent.fresh().status == "starting"
    assert agent.fresh().status == "starting"


def test_a_runs_token_cannot_read_another_runs_logs(agent, other_agent):
    response = agent_client(agent.token).get(f"/api/research/agents/{other_agent.id}/logs")

    assert response.status_code == 404


def test_a_runs_token_cannot_act_as_an_operator(agent):
    client = agent_client(agent.token)

    assert client.post(f"/api/research/agents/{agent.id}/stop").status_code in (401, 403)
    assert client.post(f"/api/research/agents/{agent.id}/approve", {"approved": True}).status_code in (401, 403)
    assert client.post(f"/api/research/agents/{agent.id}/token").status_code in (401, 403)
    assert client.get("/api/research/experiments").status_code in (401, 403)
    assert agent.fresh().status == "starting"


@pytest.mark.parametrize(("kind", "body"), REPORTS)
def test_user_tokens_cannot_report(agent, team, kind, body):
    for user in (team["owner"], team["operator"]):
        response = api_client(user).post(f"/api/research/agents/{agent.id}/{kind}", body, format="json")

        assert response.status_code == 403
        assert response.json()["error"] == "permission_denied"
    assert agent.fresh().status == "starting"


def test_reports_without_credentials_are_401(agent, anon):
    response = anon.post(f"/api/research/agents/{agent.id}/progress", {"progress_percent": 1}, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "Bearer" in response.headers.get("WWW-Authenticate", "") or response.headers.get("WWW-Authenticate")


@pytest.mark.parametrize("header", ["Bearer rt_nope", "Bearer ", "Bearer a b", "bearer rt_" + "x" * 300])
def test_an_unknown_or_malformed_bearer_token_is_401(agent, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.post(f"/api/research/agents/{agent.id}/progress", {"progress_percent": 1}, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_a_reissued_token_revokes_the_old_one_at_once(agent, team):
    old = agent_client(agent.token)
    assert old.post(f"/api/research/agents/{agent.id}/progress", {"progress_percent": 1}).status_code == 200

    new_token = api_client(team["operator"]).post(f"/api/research/agents/{agent.id}/token").json()["token"]

    refused = old.post(f"/api/research/agents/{agent.id}/progress", {"progress_percent": 2}, format="json")
    assert refused.status_code == 401
    assert refused.json()["error"] == "not_authenticated"
    accepted = Agent(run=agent.run, token=new_token).post("progress", {"progress_percent": 3})
    assert accepted.status_code == 200
    assert agent.fresh().progress_percent == 3.0


def test_tokens_are_stored_only_as_their_sha256(experiment_and_agents, team):
    _experiment, agents = experiment_and_agents
    created = api_client(team["owner"]).post(
        "/api/research/experiments", {"name": "x", "agents": [{"agent_type": "codex"}]}, format="json"
    )
    reissued = api_client(team["owner"]).post(f"/api/research/agents/{agents[0].id}/token").json()["token"]
    tokens = [agents[1].token, created.json()["runs"][0]["token"], reissued]

    dump = everything_stored()

    for token in tokens:
        assert token not in dump
        assert hashlib.sha256(token.encode()).hexdigest() in dump
    assert AgentRun.objects.filter(token_hash=hashlib.sha256(reissued.encode()).hexdigest()).count() == 1


def test_tokens_never_reach_the_logs(agent, other_agent, caplog):
    caplog.set_level(logging.DEBUG)
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        revoked = agent.token
        agent_client(revoked).post(f"/api/research/agents/{agent.id}/progress", {"progress_percent": 1})
        other_agent_client = agent_client(other_agent.token)
        other_agent_client.post(f"/api/research/agents/{agent.id}/progress", {"progress_percent": 1})
        other_agent_client.post(f"/api/research/agents/{other_agent.id}/progress", {"progress_percent": 500})
        agent_client("rt_" + "guess" * 8).post(f"/api/research/agents/{agent.id}/logs", {"lines": []})
        agent_client(agent.token + "x").post(f"/api/research/agents/{agent.id}/progress", {"progress_percent": 1})

    assert caplog.records, "the requests should have logged something (4xx warnings)"
    for token in (agent.token, other_agent.token, "rt_" + "guess" * 8):
        assert token not in caplog.text
        for record in caplog.records:
            assert token not in repr(record.args)


def test_a_refused_token_is_not_echoed_in_the_response(agent):
    response = agent_client("rt_secretguess123").post(f"/api/research/agents/{agent.id}/progress", {})

    assert response.status_code == 401
    assert "rt_secretguess123" not in response.content.decode()


def test_a_runs_token_reads_its_own_run_and_no_other(agent, other_agent):
    client = agent_client(agent.token)

    own = client.get(f"/api/research/agents/{agent.id}")
    other = client.get(f"/api/research/agents/{other_agent.id}")
    listing = client.get("/api/research/agents")

    assert own.status_code == 200
    assert own.json()["id"] == agent.id
    assert "token" not in own.json()
    assert other.status_code == 404
    assert listing.status_code == 403
