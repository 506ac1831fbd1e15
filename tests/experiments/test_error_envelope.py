"""Every 4xx/5xx answers ``{"error", "detail"[, "fields"]}``: DRF's, Django's own, and ours."""

import pytest

from tests.factories import make_experiment

URL = "/api/research/experiments"


def envelope_of(response, status: int, error: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["detail"], str)
    assert set(body) <= {"error", "detail", "fields"}
    return body


def test_unknown_api_path_is_djangos_404_in_the_envelope(client_for, alice):
    envelope_of(client_for(alice).get("/api/research/no/such/thing"), 404, "not_found")


def test_unknown_path_outside_the_api_is_404_json_for_api_clients(anon, db):
    envelope_of(anon.get("/definitely-not-here.php"), 404, "not_found")


def test_put_is_405(client_for, alice):
    experiment, _ = make_experiment(alice)
    body = envelope_of(client_for(alice).put(f"{URL}/{experiment.public_id}", {"name": "x"}), 405, "method_not_allowed")
    assert "PUT" in body["detail"]


def test_get_on_a_post_only_action_is_405(client_for, alice):
    experiment, _ = make_experiment(alice)
    envelope_of(client_for(alice).get(f"{URL}/{experiment.public_id}/start"), 405, "method_not_allowed")


def test_malformed_json_is_400_bad_request(client_for, alice):
    response = client_for(alice).post(URL, '{"name": "x",', content_type="application/json")
    envelope_of(response, 400, "bad_request")


def test_unknown_version_is_406(client_for, alice):
    response = client_for(alice).get(URL, HTTP_ACCEPT="application/json; version=2")
    envelope_of(response, 406, "not_acceptable")


def test_version_1_is_served(client_for, alice):
    response = client_for(alice).get(URL, HTTP_ACCEPT="application/json; version=1")
    assert response.status_code == 200


def test_text_plain_body_is_415(client_for, alice):
    response = client_for(alice).post(URL, "name=x", content_type="text/plain")
    envelope_of(response, 415, "unsupported_media_type")


def test_form_body_is_415_on_json_endpoints(client_for, alice):
    response = client_for(alice).post(URL, {"name": "x"}, format="multipart")
    envelope_of(response, 415, "unsupported_media_type")


def test_an_unexpected_error_is_500_in_the_envelope_without_a_traceback(client_for, alice, monkeypatch):
    from experiments import system

    def broken(user):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(system, "build_status", broken)
    body = envelope_of(client_for(alice).get("/api/research/status"), 500, "server_error")
    assert "secret" not in body["detail"]


@pytest.mark.parametrize("path", ["/api/research/experiments", "/api/research/agents", "/api/research/events"])
def test_401_is_in_the_envelope_everywhere(anon, db, path):
    envelope_of(anon.get(path), 401, "not_authenticated")


@pytest.mark.parametrize(
    "path",
    [
        "experiments/exp_a%00b",
        "experiments/exp_a%00b/start",
        "experiments/not-an-id",
        "agents/run_a%00",
        "results/exp_a%00",
        "metrics/exp_a%00",
        "experiments/{id}/members/a%00b",
    ],
)
def test_a_path_id_that_is_not_id_shaped_is_404_not_a_database_error(client_for, alice, path):
    # A NUL reaching a PostgreSQL query is an error there, not an empty result.
    experiment, _ = make_experiment(alice)
    url = "/api/research/" + path.replace("{id}", experiment.public_id)
    for method in ("get", "post", "delete"):
        response = getattr(client_for(alice), method)(url)
        envelope_of(response, 404, "not_found")


def test_a_nul_in_the_metric_name_is_400(client_for, alice):
    experiment, _ = make_experiment(alice)
    response = client_for(alice).get(f"/api/research/metrics/{experiment.public_id}", {"name": "a\x00"})
    assert envelope_of(response, 400, "validation_error")["fields"]["name"]
