"""POST/DELETE /api/research/auth/token: a username and password for an API token."""

from rest_framework.authtoken.models import Token

from tests.factories import PASSWORD, api_client

URL = "/api/research/auth/token"


def test_right_password_returns_the_users_token(anon, alice):
    response = anon.post(URL, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=alice).key}


def test_the_token_authenticates_later_requests(anon, alice):
    key = anon.post(URL, {"username": "alice", "password": PASSWORD}).json()["token"]
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/research/experiments").status_code == 200


def test_wrong_password_is_401_in_the_envelope(anon, alice):
    response = anon.post(URL, {"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert not Token.objects.exists()


def test_unknown_user_is_401(anon, db):
    response = anon.post(URL, {"username": "nobody", "password": PASSWORD})
    assert response.status_code == 401


def test_inactive_user_gets_no_token(anon, alice):
    alice.is_active = False
    alice.save()
    assert anon.post(URL, {"username": "alice", "password": PASSWORD}).status_code == 401


def test_missing_password_is_400_with_fields(anon, alice):
    response = anon.post(URL, {"username": "alice"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert "password" in body["fields"]


def test_non_string_username_is_400(anon, alice):
    response = anon.post(URL, {"username": 7, "password": PASSWORD})
    assert response.status_code == 400
    assert "username" in response.json()["fields"]


def test_delete_revokes_the_token_at_once(client_for, alice):
    client = client_for(alice)
    assert client.delete(URL).status_code == 204
    response = client.get("/api/research/experiments")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_delete_without_credentials_is_401(anon, db):
    assert anon.delete(URL).status_code == 401


def test_no_credentials_is_401_with_www_authenticate(anon, db):
    response = anon.get("/api/research/experiments")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response.headers["WWW-Authenticate"].startswith("Token")


def test_invalid_token_is_401(db):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert client.get("/api/research/experiments").status_code == 401
