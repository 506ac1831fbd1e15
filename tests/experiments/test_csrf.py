"""CSRF protects writes made with the session cookie; token-authenticated writes need none."""

from rest_framework.test import APIClient

from experiments.models import Experiment
from tests.factories import PASSWORD, token_for

URL = "/api/research/experiments"
CSRF_TOKEN = "a" * 32


def session_client(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_session_write_without_the_csrf_token_is_403(alice):
    response = session_client(alice).post(URL, {"name": "forged"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert "CSRF" in response.json()["detail"]
    assert not Experiment.objects.exists()


def test_session_write_with_the_csrf_token_succeeds(alice):
    client = session_client(alice)
    client.cookies["csrftoken"] = CSRF_TOKEN
    response = client.post(URL, {"name": "mine"}, format="json", HTTP_X_CSRFTOKEN=CSRF_TOKEN)
    assert response.status_code == 201


def test_session_reads_need_no_csrf_token(alice):
    assert session_client(alice).get(URL).status_code == 200


def test_token_auth_writes_need_no_csrf_token(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(alice)}")
    assert client.post(URL, {"name": "scripted"}, format="json").status_code == 201
