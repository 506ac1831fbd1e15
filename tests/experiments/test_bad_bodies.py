"""Bad bodies get 400 (or 413) in the error envelope, and nothing is stored."""

import json

import pytest
from channels.testing import HttpCommunicator

from agents.models import AgentRun
from experiments.models import Experiment, Membership
from realtime.models import Event
from tests.factories import make_experiment, token_for

URL = "/api/research/experiments"


def counts() -> tuple[int, int, int, int]:
    return Experiment.objects.count(), AgentRun.objects.count(), Membership.objects.count(), Event.objects.count()


def assert_envelope(response, status: int, error: str, field: str | None = None):
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"error", "detail", "fields"}
    if field is not None:
        assert field in body["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 42}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "description": "x" * 10_001}, "description"),
        ({"name": "ok", "description": 3}, "description"),
        ({"name": "ok", "config": "not an object"}, "config"),
        ({"name": "ok", "config": [1, 2]}, "config"),
        ({"name": "ok", "config": {"big": "x" * 70_000}}, "config"),
        ({"name": "ok", "config": {"k": "nul \u0000 inside"}}, "config"),
        ({"name": "ok", "config": {"nul \u0000 key": 1}}, "config"),
        ({"name": "ok", "agents": [{"agent_type": "x", "config": {"k": ["\u0000"]}}]}, "agents"),
        ({"name": "nul \u0000 inside"}, "name"),
        ({"name": "ok", "agents": {"agent_type": "x"}}, "agents"),
        ({"name": "ok", "agents": [{"agent_type": "x"}] * 201}, "agents"),
        ({"name": "ok", "agents": [{"agent_type": 1}]}, "agents"),
        ({"name": "ok", "agents": [{"agent_type": "x", "cost": "a lot"}]}, "agents"),
        ({"name": "ok", "status": "running"}, "status"),
        ({"name": "ok", "id": "exp_mine"}, "id"),
    ],
)
def test_bad_create_body_is_400_and_stores_nothing(client_for, alice, body, field):
    before = counts()
    response = client_for(alice).post(URL, body)
    assert_envelope(response, 400, "validation_error", field)
    assert counts() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 1}, "name"),
        ({"description": "x" * 10_001}, "description"),
        ({"config": "x"}, "config"),
        ({"config": {"k": "\u0000"}}, "config"),
        ({"status": "completed"}, "status"),
        ({"name": "ok", "created_by": "mallory"}, "created_by"),
    ],
)
def test_bad_patch_body_is_400_and_changes_nothing(client_for, alice, body, field):
    experiment, _ = make_experiment(alice, name="Kept")
    before = counts()
    response = client_for(alice).patch(f"{URL}/{experiment.public_id}", body)
    assert_envelope(response, 400, "validation_error", field)
    experiment.refresh_from_db()
    assert (experiment.name, experiment.status, experiment.created_by) == ("Kept", "created", alice)
    assert counts() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": 5, "role": "viewer"}, "username"),
        ({"username": "bob", "role": "admin"}, "role"),
        ({"username": "x" * 151, "role": "viewer"}, "username"),
        ({"username": "bob", "role": "viewer", "expires": "never"}, "expires"),
    ],
)
def test_bad_member_body_is_400_and_changes_nothing(client_for, alice, bob, body, field):
    experiment, _ = make_experiment(alice)
    before = counts()
    response = client_for(alice).post(f"{URL}/{experiment.public_id}/members", body)
    assert_envelope(response, 400, "validation_error", field)
    assert counts() == before


def test_body_that_is_not_an_object_is_400(client_for, alice):
    response = client_for(alice).post(URL, [1, 2, 3])
    assert_envelope(response, 400, "validation_error")
    assert not Experiment.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_numbers_are_400_bad_request(client_for, alice, literal):
    body = '{"name": "ok", "config": {"n": ' + literal + "}}"
    response = client_for(alice).post(URL, body, content_type="application/json")
    assert_envelope(response, 400, "bad_request")
    assert not Experiment.objects.exists()


def test_json_body_over_1_mib_is_413_and_stores_nothing(client_for, alice):
    body = json.dumps({"name": "big", "config": {"blob": "x" * (1024 * 1024 + 10)}})
    response = client_for(alice).post(URL, body, content_type="application/json")
    assert_envelope(response, 413, "payload_too_large")
    assert not Experiment.objects.exists()


def test_deeply_nested_json_is_400_not_a_crash(client_for, alice):
    body = '{"name": "deep", "config": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"
    response = client_for(alice).post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert not Experiment.objects.exists()


@pytest.mark.django_db(transaction=True)
async def test_a_2_mib_import_is_refused_413_by_the_server_before_it_is_read(alice):
    """Through the real ASGI application: the body limit answers before Django parses."""
    from channels.db import database_sync_to_async

    from research_site.asgi import application

    key = await database_sync_to_async(token_for)(alice)
    boundary = "XyZ"
    payload = b"x" * (2 * 1024 * 1024)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="spec.json"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    communicator = HttpCommunicator(
        application,
        "POST",
        f"{URL}/import",
        body=body,
        headers=[
            (b"host", b"testserver"),
            (b"authorization", f"Token {key}".encode()),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    )
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 413
    assert json.loads(response["body"])["error"] == "payload_too_large"
    assert await database_sync_to_async(Experiment.objects.count)() == 0
