"""POST experiments/import: a JSON or YAML spec file, at most 1 MiB."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agents.models import AgentRun
from experiments.models import Experiment
from tests.experiments.recorded import event_types

URL = "/api/research/experiments/import"

SPEC = {
    "name": "Imported",
    "description": "from a file",
    "config": {"seed": 7},
    "agents": [{"agent_type": "claude_code", "name": "one"}, {"agent_type": "codex"}],
}
YAML_SPEC = """\
name: Imported
description: from a file
config:
  seed: 7
agents:
  - agent_type: claude_code
    name: one
  - agent_type: codex
"""


def upload(client, content: bytes | str, name: str = "spec.json"):
    if isinstance(content, str):
        content = content.encode()
    return client.post(URL, {"file": SimpleUploadedFile(name, content)}, format="multipart")


def nothing_stored() -> bool:
    return not Experiment.objects.exists() and not AgentRun.objects.exists()


@pytest.mark.parametrize(("content", "name"), [(json.dumps(SPEC), "spec.json"), (YAML_SPEC, "spec.yaml")])
def test_valid_spec_creates_the_experiment_as_post_does(client_for, alice, content, name):
    response = upload(client_for(alice), content, name)
    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "created"
    assert data["name"] == "Imported"
    assert data["config"] == {"seed": 7}
    assert [(r["agent_type"], r["name"]) for r in data["runs"]] == [("claude_code", "one"), ("codex", "codex")]
    assert all(r["token"].startswith("rt_") for r in data["runs"])
    assert event_types(data["id"]) == ["experiment_created"]


def test_yaml_without_an_extension_is_read_as_yaml(client_for, alice):
    assert upload(client_for(alice), YAML_SPEC, "spec").status_code == 201


def test_invalid_spec_is_400_with_fields(client_for, alice):
    spec = {"name": "", "agents": [{"agent_type": "ok"}, {"name": "no type"}], "extra": 1}
    response = upload(client_for(alice), json.dumps(spec))
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert "extra" in body["fields"]
    assert nothing_stored()


def test_invalid_agent_is_reported_by_position(client_for, alice):
    spec = {"name": "x", "agents": [{"agent_type": "ok"}, {"name": "no type"}]}
    response = upload(client_for(alice), json.dumps(spec))
    assert response.status_code == 400
    assert response.json()["fields"]["agents"] == {"1": {"agent_type": ["This field is required."]}}
    assert nothing_stored()


@pytest.mark.parametrize(
    ("content", "name"),
    [
        ("{not json", "spec.json"),
        ("name: [unclosed", "spec.yaml"),
        ("- a list\n- not an object\n", "spec.yaml"),
        ("", "spec.json"),
        (b"\xff\xfe\x00binary", "spec.json"),
    ],
)
def test_unreadable_file_is_400_on_the_file_field(client_for, alice, content, name):
    response = upload(client_for(alice), content, name)
    assert response.status_code == 400
    assert "file" in response.json()["fields"]
    assert nothing_stored()


def test_yaml_aliases_are_refused(client_for, alice):
    bomb = 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nname: boom\n'
    response = upload(client_for(alice), bomb, "spec.yaml")
    assert response.status_code == 400
    assert "alias" in response.json()["fields"]["file"][0]
    assert nothing_stored()


def test_yaml_only_types_are_not_constructed(client_for, alice):
    response = upload(client_for(alice), "name: !!python/object/apply:os.system ['true']\n", "spec.yaml")
    assert response.status_code == 400
    assert nothing_stored()


def test_spec_over_1_mib_is_413(client_for, alice):
    content = json.dumps({"name": "big", "description": "x" * (1024 * 1024)})
    response = upload(client_for(alice), content)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert nothing_stored()


def test_a_2_mib_import_is_413_and_stores_nothing(client_for, alice):
    response = upload(client_for(alice), b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert nothing_stored()


def test_a_json_body_instead_of_a_form_is_415(client_for, alice):
    response = client_for(alice).post(URL, SPEC, format="json")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert nothing_stored()


def test_a_form_without_the_file_field_is_400(client_for, alice):
    response = client_for(alice).post(URL, {"spec": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["fields"]
