"""The OpenAPI 3 schema: valid without warnings, full paths, the error envelope."""

import json

import pytest
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker):
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(path))
    return json.loads(path.read_text())


def test_schema_is_valid_openapi_3_and_states_the_version(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["version"] == "1"


def test_schema_writes_every_path_in_full(schema):
    paths = set(schema["paths"])
    for expected in (
        "/api/research/auth/token",
        "/api/research/experiments",
        "/api/research/experiments/{id}",
        "/api/research/experiments/{id}/start",
        "/api/research/experiments/{id}/stop",
        "/api/research/experiments/{id}/agents",
        "/api/research/experiments/{id}/members",
        "/api/research/experiments/{id}/members/{username}",
        "/api/research/experiments/import",
        "/api/research/experiments/bulk",
        "/api/research/agents",
        "/api/research/agents/{run_id}",
        "/api/research/agents/{run_id}/stop",
        "/api/research/agents/{run_id}/retry",
        "/api/research/agents/{run_id}/token",
        "/api/research/agents/bulk",
        "/api/research/events",
        "/api/research/ws-ticket",
        "/api/research/status",
        "/api/research/config",
        "/api/research/command",
    ):
        assert expected in paths
    assert not any(p.startswith("/experiments") for p in paths)


def test_error_responses_use_the_envelope(schema):
    components = schema["components"]["schemas"]
    assert {"error", "detail"} <= set(components["Error"]["properties"])
    assert "fields" in components["ValidationError"]["properties"]
    start = schema["paths"]["/api/research/experiments/{id}/start"]["post"]["responses"]
    assert set(start) >= {"200", "401", "403", "404", "409", "429"}
    assert start["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    create = schema["paths"]["/api/research/experiments"]["post"]["responses"]
    assert create["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationError")


def test_import_takes_a_multipart_file(schema):
    body = schema["paths"]["/api/research/experiments/import"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
