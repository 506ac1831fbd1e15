"""POST/GET/PATCH/DELETE /api/research/experiments[/{id}]."""

import re

import pytest

from agents.models import AgentRun
from agents.tokens import hash_token
from experiments.models import Experiment, ExperimentStatus, Membership, Role
from tests.experiments.recorded import event_types, events_of
from tests.factories import experiment_in_status, make_experiment

URL = "/api/research/experiments"


def detail(experiment) -> str:
    return f"{URL}/{experiment.public_id}"


def test_create_returns_the_experiment_created_with_pending_runs_and_tokens(client_for, alice):
    body = {
        "name": "Refactor auth",
        "description": "Two agents race",
        "config": {"max_tokens": 1000},
        "agents": [{"agent_type": "claude_code", "name": "a"}, {"agent_type": "codex"}],
    }
    response = client_for(alice).post(URL, body)
    assert response.status_code == 201
    data = response.json()
    assert re.fullmatch(r"exp_[A-Za-z0-9]{20}", data["id"])
    assert data["status"] == "created"
    assert data["name"] == "Refactor auth"
    assert data["config"] == {"max_tokens": 1000}
    assert data["created_by"] == "alice"
    assert data["created_at"].endswith("Z")
    assert [r["status"] for r in data["runs"]] == ["pending", "pending"]
    assert [r["name"] for r in data["runs"]] == ["a", "codex"]
    for run in data["runs"]:
        assert re.fullmatch(r"run_[A-Za-z0-9]{20}", run["id"])
        assert run["attempt"] == 1
        assert run["retry_of"] is None
        # The token works: it is the one whose hash the run keeps.
        assert AgentRun.objects.get(public_id=run["id"]).token_hash == hash_token(run["token"])
    experiment = Experiment.objects.get(public_id=data["id"])
    assert experiment.memberships.get().role == Role.OWNER
    assert event_types(experiment) == ["experiment_created"]


def test_create_with_only_a_name_has_no_runs(client_for, alice):
    response = client_for(alice).post(URL, {"name": "Solo"})
    assert response.status_code == 201
    assert response.json()["runs"] == []
    assert response.json()["description"] == ""


def test_create_without_a_name_is_400_and_stores_nothing(client_for, alice):
    response = client_for(alice).post(URL, {"agents": [{"agent_type": "x"}]})
    assert response.status_code == 400
    assert response.json()["fields"]["name"]
    assert not Experiment.objects.exists()
    assert not AgentRun.objects.exists()


def test_run_tokens_are_never_shown_again(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).get(detail(experiment))
    assert all("token" not in run for run in response.json()["runs"])


def test_list_shows_only_the_callers_experiments_newest_first(client_for, alice, bob):
    first, _ = make_experiment(alice, name="first")
    second, _ = make_experiment(alice, name="second")
    make_experiment(bob, name="bob's")
    response = client_for(alice).get(URL)
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    assert [e["id"] for e in data["results"]] == [second.public_id, first.public_id]
    assert data["results"][0]["role"] == "owner"


def test_staff_lists_every_experiment(client_for, alice, bob, staff):
    make_experiment(alice)
    make_experiment(bob)
    assert client_for(staff).get(URL).json()["count"] == 2


def test_list_filters_by_status(client_for, alice):
    created, _ = make_experiment(alice)
    running, _ = experiment_in_status(alice, ExperimentStatus.RUNNING)
    response = client_for(alice).get(URL, {"status": "running"})
    assert [e["id"] for e in response.json()["results"]] == [running.public_id]
    response = client_for(alice).get(URL, {"status": "created"})
    assert [e["id"] for e in response.json()["results"]] == [created.public_id]


def test_list_searches_name_and_description(client_for, alice):
    make_experiment(alice, name="Tokenizer study")
    other, _ = make_experiment(alice, name="Other")
    Experiment.objects.filter(pk=other.pk).update(description="about tokenizers")
    make_experiment(alice, name="Unrelated")
    response = client_for(alice).get(URL, {"search": "tokeniz"})
    assert response.json()["count"] == 2


def test_list_orders_by_name(client_for, alice):
    for name in ("b", "c", "a"):
        make_experiment(alice, name=name)
    names = [e["name"] for e in client_for(alice).get(URL, {"ordering": "name"}).json()["results"]]
    assert names == ["a", "b", "c"]
    names = [e["name"] for e in client_for(alice).get(URL, {"ordering": "-name"}).json()["results"]]
    assert names == ["c", "b", "a"]


def test_detail_has_the_runs_and_the_callers_role(client_for, alice, members, charlie):
    experiment, issued = make_experiment(alice, members=members)
    response = client_for(charlie).get(detail(experiment))
    assert response.status_code == 200
    data = response.json()
    assert data["role"] == "viewer"
    assert [r["id"] for r in data["runs"]] == [i.run.public_id for i in issued]
    run = data["runs"][0]
    for field in (
        "id", "experiment_id", "agent_type", "name", "attempt", "retry_of", "status",
        "progress_percent", "current_action", "metrics", "plan", "approval",
        "started_at", "completed_at", "error",
    ):  # fmt: skip
        assert field in run
    assert run["metrics"] == {"tokens_used": 0, "cost": 0.0, "elapsed_time": 0.0}


def test_unknown_experiment_is_404(client_for, alice):
    response = client_for(alice).get(f"{URL}/exp_doesnotexist")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not found."}


def test_non_member_gets_404_not_403(client_for, alice, dave):
    experiment, _ = make_experiment(alice)
    response = client_for(dave).get(detail(experiment))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


# PATCH -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(ExperimentStatus))
def test_name_and_description_change_in_any_status(client_for, alice, status):
    experiment, _ = experiment_in_status(alice, status)
    response = client_for(alice).patch(detail(experiment), {"name": "Renamed", "description": "New"})
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["description"] == "New"
    assert response.json()["status"] == status


def test_config_changes_while_created(client_for, alice):
    experiment, _ = make_experiment(alice, config={"a": 1})
    response = client_for(alice).patch(detail(experiment), {"config": {"a": 2}})
    assert response.status_code == 200
    assert response.json()["config"] == {"a": 2}


def test_refused_config_change_changes_nothing_else_sent_with_it(client_for, alice):
    experiment, _ = experiment_in_status(alice, ExperimentStatus.RUNNING, config={"a": 1})
    before = len(events_of(experiment))
    response = client_for(alice).patch(detail(experiment), {"config": {"a": 2}, "name": "Renamed"})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    experiment.refresh_from_db()
    assert experiment.config == {"a": 1}
    assert experiment.name == "Experiment"
    assert len(events_of(experiment)) == before


def test_patch_records_exactly_one_experiment_updated_with_the_changed_fields(client_for, alice):
    experiment, _ = make_experiment(alice, config={"a": 1})
    client_for(alice).patch(detail(experiment), {"name": "Renamed", "description": "", "config": {"b": 2}})
    events = events_of(experiment)
    assert [e.event_type for e in events] == ["experiment_created", "experiment_updated"]
    # The description was already empty: only what changed is in the event.
    assert events[-1].data == {"name": "Renamed", "config": {"b": 2}}
    assert events[-1].seq == 2


def test_patch_that_changes_nothing_records_nothing(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).patch(detail(experiment), {"name": experiment.name})
    assert response.status_code == 200
    assert event_types(experiment) == ["experiment_created"]


def test_empty_patch_is_400(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).patch(detail(experiment), {})
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


def test_blank_name_is_400(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).patch(detail(experiment), {"name": "   "})
    assert response.status_code == 400
    assert "name" in response.json()["fields"]


def test_put_is_405_in_the_envelope(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).put(detail(experiment), {"name": "x"})
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


# DELETE ------------------------------------------------------------------------------


def test_delete_removes_the_experiment_its_runs_and_members(client_for, alice):
    experiment, _ = experiment_in_status(alice, ExperimentStatus.STOPPED)
    response = client_for(alice).delete(detail(experiment))
    assert response.status_code == 204
    assert response.content == b""
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    assert not AgentRun.objects.filter(experiment_id=experiment.pk).exists()
    assert not Membership.objects.filter(experiment_id=experiment.pk).exists()
    # The history outlives the experiment and ends with its deletion.
    assert event_types(experiment)[-1] == "experiment_deleted"
    assert client_for(alice).get(detail(experiment)).status_code == 404
