"""POST experiments/bulk: start, stop or delete several experiments, each id alone."""

from experiments.models import Experiment, ExperimentStatus, Role
from tests.factories import experiment_in_status, make_experiment

URL = "/api/research/experiments/bulk"


def test_bulk_start_answers_one_outcome_per_id_in_order(client_for, alice, bob):
    ready, _ = make_experiment(alice)
    running, _ = experiment_in_status(alice, ExperimentStatus.RUNNING)
    invisible, _ = make_experiment(bob)
    ids = [ready.public_id, running.public_id, invisible.public_id, "exp_missing"]
    response = client_for(alice).post(URL, {"action": "start", "ids": ids})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == ids
    assert results[0] == {"id": ready.public_id, "ok": True, "status": "running"}
    assert results[1]["ok"] is False
    assert results[1]["error"] == "conflict"
    assert results[2] == {"id": invisible.public_id, "ok": False, "error": "not_found"}
    assert results[3] == {"id": "exp_missing", "ok": False, "error": "not_found"}
    # Each id alone: the conflicts did not undo the success, nor touch the invisible one.
    assert Experiment.objects.get(pk=ready.pk).status == "running"
    assert Experiment.objects.get(pk=invisible.pk).status == "created"


def test_bulk_stop(client_for, alice):
    running, _ = experiment_in_status(alice, ExperimentStatus.RUNNING)
    created, _ = make_experiment(alice)
    response = client_for(alice).post(URL, {"action": "stop", "ids": [running.public_id, created.public_id]})
    results = response.json()["results"]
    assert results[0] == {"id": running.public_id, "ok": True, "status": "stopped"}
    assert results[1]["error"] == "conflict"


def test_bulk_delete_refuses_running_ones_only(client_for, alice):
    stopped, _ = experiment_in_status(alice, ExperimentStatus.STOPPED)
    running, _ = experiment_in_status(alice, ExperimentStatus.RUNNING)
    response = client_for(alice).post(URL, {"action": "delete", "ids": [stopped.public_id, running.public_id]})
    results = response.json()["results"]
    assert results[0] == {"id": stopped.public_id, "ok": True, "status": "deleted"}
    assert results[1]["error"] == "conflict"
    assert list(Experiment.objects.values_list("pk", flat=True)) == [running.pk]


def test_bulk_reports_a_too_low_role_per_id(client_for, alice, charlie):
    experiment, _ = make_experiment(alice, members={charlie: Role.VIEWER})
    response = client_for(charlie).post(URL, {"action": "start", "ids": [experiment.public_id]})
    assert response.json()["results"] == [{"id": experiment.public_id, "ok": False, "error": "permission_denied"}]
    assert Experiment.objects.get(pk=experiment.pk).status == "created"


def test_bulk_unknown_action_is_400(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).post(URL, {"action": "explode", "ids": [experiment.public_id]})
    assert response.status_code == 400
    assert "action" in response.json()["fields"]


def test_bulk_without_ids_is_400(client_for, alice):
    response = client_for(alice).post(URL, {"action": "start", "ids": []})
    assert response.status_code == 400
    assert "ids" in response.json()["fields"]


def test_bulk_ids_must_be_strings(client_for, alice):
    response = client_for(alice).post(URL, {"action": "start", "ids": [1, 2]})
    assert response.status_code == 400
    assert "ids" in response.json()["fields"]
