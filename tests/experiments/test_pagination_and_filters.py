"""Lists: ``{"count", "next", "previous", "results"}``, 10 a page by default, at most 100;
unknown filter values are a 400."""

import pytest

from experiments.models import Experiment
from tests.factories import make_experiment

URL = "/api/research/experiments"


@pytest.fixture
def many_experiments(staff):
    """105 experiments: only staff sees them all, which is all these tests need."""
    Experiment.objects.bulk_create(Experiment(name=f"e{i:03}", created_by=staff) for i in range(105))


def test_pages_hold_10_by_default(client_for, staff, many_experiments):
    data = client_for(staff).get(URL).json()
    assert data["count"] == 105
    assert len(data["results"]) == 10
    assert data["previous"] is None
    assert "page=2" in data["next"]
    last = client_for(staff).get(URL, {"page": 11}).json()
    assert len(last["results"]) == 5
    assert last["next"] is None


def test_page_size_is_honoured_up_to_100(client_for, staff, many_experiments):
    assert len(client_for(staff).get(URL, {"page_size": 7}).json()["results"]) == 7
    assert len(client_for(staff).get(URL, {"page_size": 1000}).json()["results"]) == 100


def test_a_page_past_the_end_is_404_in_the_envelope(client_for, staff, many_experiments):
    response = client_for(staff).get(URL, {"page": 999})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_run_and_event_lists_are_paginated_too(client_for, alice):
    make_experiment(alice, agents=12)
    runs = client_for(alice).get("/api/research/agents").json()
    assert (runs["count"], len(runs["results"])) == (12, 10)
    events = client_for(alice).get("/api/research/events").json()
    assert set(events) == {"count", "next", "previous", "results"}


@pytest.mark.parametrize(
    ("query", "field"),
    [({"status": "bogus"}, "status"), ({"ordering": "bogus"}, "ordering"), ({"ordering": "name,-secret"}, "ordering")],
)
def test_unknown_filter_values_are_400(client_for, alice, query, field):
    make_experiment(alice)
    response = client_for(alice).get(URL, query)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["fields"]


@pytest.mark.parametrize("page", ["0", "-1", "two", "1.5", "٣"])
@pytest.mark.parametrize("path", [URL, "/api/research/agents", "/api/research/events"])
def test_a_page_that_is_not_a_whole_number_from_1_is_400_naming_it(client_for, alice, path, page):
    make_experiment(alice, agents=2)
    response = client_for(alice).get(path, {"page": page})
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert "page" in response.json()["fields"]


def test_the_last_page_can_be_asked_for_by_name(client_for, staff, many_experiments):
    last = client_for(staff).get(URL, {"page": "last"}).json()
    assert len(last["results"]) == 5 and last["next"] is None


def test_list_filters_do_not_reach_one_experiment_or_run(client_for, alice):
    experiment, issued = make_experiment(alice, agents=1)
    client = client_for(alice)
    # The experiment is "created": a status filter for another status must not hide it.
    response = client.get(f"{URL}/{experiment.public_id}", {"status": "running", "search": "nothing like it"})
    assert response.status_code == 200
    assert response.json()["id"] == experiment.public_id
    members = client.get(f"{URL}/{experiment.public_id}/members", {"status": "bogus"})
    assert members.status_code == 200
    run = issued[0].run.public_id
    assert client.get(f"/api/research/agents/{run}", {"status": "completed"}).status_code == 200


def test_members_are_a_paginated_list(client_for, alice, bob, charlie):
    experiment, _ = make_experiment(alice, members={bob: "operator", charlie: "viewer"})
    body = client_for(alice).get(f"{URL}/{experiment.public_id}/members", {"page_size": 2}).json()
    assert body["count"] == 3
    assert [m["username"] for m in body["results"]] == ["alice", "bob"]
    assert "page=2" in body["next"]
