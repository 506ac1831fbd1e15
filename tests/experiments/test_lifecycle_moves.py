"""The table of legal and illegal moves, through the API: legal ones change the state,
illegal ones answer 409 ``conflict`` and change and record nothing."""

import pytest

from agents.models import AgentRun, RunStatus
from experiments.models import Experiment, ExperimentStatus
from realtime.models import Event
from tests.factories import experiment_in_status, run_in_status

S = ExperimentStatus
R = RunStatus

# experiment status: (start, stop, delete, patch config)
EXPERIMENT_MOVES = {
    S.CREATED: (200, 409, 204, 200),
    S.RUNNING: (409, 200, 409, 409),
    S.COMPLETED: (409, 409, 204, 409),
    S.STOPPED: (409, 409, 204, 409),
    S.FAILED: (409, 409, 204, 409),
}
EXPERIMENT_ACTIONS = ["start", "stop", "delete", "patch config"]

# run status: (stop, retry)
RUN_MOVES = {
    R.PENDING: (200, 409),
    R.STARTING: (200, 409),
    R.RUNNING: (200, 409),
    R.AWAITING_APPROVAL: (200, 409),
    R.COMPLETED: (409, 409),
    R.FAILED: (409, 201),
    R.STOPPED: (409, 201),
}
RUN_ACTIONS = ["stop", "retry"]


def _cases(table, actions):
    return [
        pytest.param(status, action, code, id=f"{status}-{action}-{code}")
        for status, codes in table.items()
        for action, code in zip(actions, codes, strict=True)
    ]


def _request(client, experiment, action):
    url = f"/api/research/experiments/{experiment.public_id}"
    if action == "patch config":
        return client.patch(url, {"config": {"changed": True}})
    if action == "delete":
        return client.delete(url)
    return client.post(f"{url}/{action}")


@pytest.mark.parametrize(("status", "action", "code"), _cases(EXPERIMENT_MOVES, EXPERIMENT_ACTIONS))
def test_only_legal_experiment_moves_change_anything(client_for, alice, status, action, code):
    experiment, _ = experiment_in_status(alice, status, config={"original": True})
    events_before = Event.objects.count()
    runs_before = list(AgentRun.objects.order_by("pk").values_list("status", flat=True))
    response = _request(client_for(alice), experiment, action)
    assert response.status_code == code
    if code == 409:
        assert response.json()["error"] == "conflict"
        experiment.refresh_from_db()
        assert experiment.status == status
        assert experiment.config == {"original": True}
        assert list(AgentRun.objects.order_by("pk").values_list("status", flat=True)) == runs_before
        assert Event.objects.count() == events_before
        return
    assert Event.objects.count() > events_before
    if action == "delete":
        assert not Experiment.objects.filter(pk=experiment.pk).exists()
        return
    experiment.refresh_from_db()
    expected = {"start": S.RUNNING, "stop": S.STOPPED, "patch config": status}[action]
    assert experiment.status == expected
    assert response.json()["status"] == expected


@pytest.mark.parametrize(("status", "action", "code"), _cases(RUN_MOVES, RUN_ACTIONS))
def test_only_legal_run_moves_change_anything(client_for, alice, status, action, code):
    _experiment, run, _token = run_in_status(alice, status)
    events_before = Event.objects.count()
    runs_before = AgentRun.objects.count()
    response = client_for(alice).post(f"/api/research/agents/{run.public_id}/{action}")
    assert response.status_code == code
    run_after = AgentRun.objects.get(pk=run.pk)
    if code == 409:
        assert response.json()["error"] == "conflict"
        assert run_after.status == status
        assert AgentRun.objects.count() == runs_before
        assert Event.objects.count() == events_before
        return
    if action == "stop":
        assert run_after.status == R.STOPPED
        assert response.json()["status"] == R.STOPPED
    else:
        assert run_after.status == status  # the attempt itself is history
        assert response.json()["retry_of"] == run.public_id
        assert AgentRun.objects.count() == runs_before + 1
