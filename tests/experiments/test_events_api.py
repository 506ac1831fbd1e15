"""GET /api/research/events (the stored history) and POST /api/research/ws-ticket."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from experiments import lifecycle, runtime_config
from experiments.models import Role
from realtime.models import Event
from realtime.tickets import consume_ticket
from tests.factories import make_experiment

URL = "/api/research/events"


@pytest.fixture
def two_experiments(alice, bob):
    """alice's experiment with 3 events (created, updated, started) and bob's with 1."""
    mine, _issued = make_experiment(alice, agents=1)
    theirs, _ = make_experiment(bob, agents=1)
    lifecycle.update_experiment(experiment=mine, by=alice, name="Renamed")
    lifecycle.start_experiment(experiment=mine, by=alice)
    return mine, theirs


def test_events_are_the_callers_history_oldest_first(client_for, alice, two_experiments):
    mine, _theirs = two_experiments
    response = client_for(alice).get(URL)
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 3
    events = data["results"]
    assert [e["event_type"] for e in events] == ["experiment_created", "experiment_updated", "experiment_started"]
    assert [e["seq"] for e in events] == [1, 2, 3]
    assert {e["experiment_id"] for e in events} == {mine.public_id}
    ids = [e["id"] for e in events]
    assert ids == sorted(ids)
    first = events[0]
    assert first["type"] == "event"
    assert first["run_id"] is None
    assert first["timestamp"].endswith("Z")
    assert first["data"]["id"] == mine.public_id


def test_staff_sees_every_experiments_events(client_for, staff, two_experiments):
    assert client_for(staff).get(URL).json()["count"] == 4


def test_filter_by_experiment_with_since_as_seq(client_for, alice, two_experiments):
    mine, _theirs = two_experiments
    response = client_for(alice).get(URL, {"experiment": mine.public_id, "since": 1})
    assert [e["seq"] for e in response.json()["results"]] == [2, 3]


def test_without_experiment_since_is_an_event_id(client_for, alice, two_experiments):
    mine, _theirs = two_experiments
    second = Event.objects.get(experiment_id=mine.public_id, seq=2)
    response = client_for(alice).get(URL, {"since": second.id})
    assert [e["seq"] for e in response.json()["results"]] == [3]


def test_filter_by_run_and_event_type(client_for, alice, two_experiments):
    mine, _theirs = two_experiments
    run = mine.runs.get()
    client_for(alice).post(f"/api/research/agents/{run.public_id}/stop")
    by_run = client_for(alice).get(URL, {"run": run.public_id}).json()["results"]
    assert [e["event_type"] for e in by_run] == ["agent_stopped"]
    by_type = client_for(alice).get(URL, {"event_type": "experiment_updated"}).json()["results"]
    assert [e["data"] for e in by_type] == [{"name": "Renamed"}]


def test_another_users_experiment_yields_no_events(client_for, alice, two_experiments):
    _mine, theirs = two_experiments
    response = client_for(alice).get(URL, {"experiment": theirs.public_id})
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_a_viewer_reads_the_history(client_for, alice, charlie):
    experiment, _ = make_experiment(alice, members={charlie: Role.VIEWER})
    assert client_for(charlie).get(URL, {"experiment": experiment.public_id}).json()["count"] == 1


def test_system_events_have_no_experiment_and_no_seq(client_for, alice, staff):
    runtime_config.update_config(changes={"approval_timeout_seconds": 60}, by=staff)
    events = client_for(alice).get(URL, {"event_type": "config_updated"}).json()["results"]
    assert len(events) == 1
    assert events[0]["experiment_id"] is None
    assert events[0]["seq"] is None
    assert events[0]["data"]["changed"] == {"approval_timeout_seconds": 60}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "abc"}, "since"),
        ({"since": "-1"}, "since"),
        ({"experiment": "run_notanexp"}, "experiment"),
        ({"run": "exp_notarun"}, "run"),
        ({"event_type": "bogus"}, "event_type"),
    ],
)
def test_bad_filter_values_are_400(client_for, alice, query, field):
    response = client_for(alice).get(URL, query)
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_events_need_credentials(anon, db):
    assert anon.get(URL).status_code == 401


# ws-ticket -----------------------------------------------------------------------------


def test_ws_ticket_is_single_use_and_valid_30_seconds(client_for, alice):
    before = timezone.now()
    response = client_for(alice).post("/api/research/ws-ticket")
    assert response.status_code == 200
    data = response.json()
    assert data["expires_at"].endswith("Z")
    expires_at = parse_datetime(data["expires_at"])
    assert before + timedelta(seconds=29) <= expires_at <= timezone.now() + timedelta(seconds=31)
    assert consume_ticket(data["ticket"]) == alice
    assert consume_ticket(data["ticket"]) is None


def test_ws_ticket_needs_credentials(anon, db):
    response = anon.post("/api/research/ws-ticket")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
