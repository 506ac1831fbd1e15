"""429 ``rate_limited`` with ``Retry-After``: per signed-in user, per anonymous IP, with
``X-Forwarded-For`` trusted only through the configured number of proxies."""

import pytest

from experiments import runtime_config
from tests.factories import PASSWORD, api_client

TOKEN_URL = "/api/research/auth/token"
WRONG = {"username": "alice", "password": "wrong"}


@pytest.fixture
def limits(staff):
    def set_limits(**changes):
        runtime_config.update_config(changes=changes, by=staff)

    return set_limits


def assert_rate_limited(response):
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 120


def anon_attempt(ip: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": ip}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return api_client().post(TOKEN_URL, WRONG, **extra)


def test_a_user_over_the_rate_gets_429_with_retry_after(client_for, alice, limits):
    limits(user_rate_per_minute=3)
    client = client_for(alice)
    assert [client.get("/api/research/experiments").status_code for _ in range(3)] == [200] * 3
    assert_rate_limited(client.get("/api/research/experiments"))


def test_the_rate_set_through_post_config_applies_at_once(client_for, staff, alice):
    response = client_for(staff).post("/api/research/config", {"user_rate_per_minute": 2})
    assert response.status_code == 200
    client = client_for(alice)
    assert [client.get("/api/research/status").status_code for _ in range(2)] == [200, 200]
    assert_rate_limited(client.get("/api/research/status"))


def test_each_user_has_their_own_budget(client_for, alice, bob, limits):
    limits(user_rate_per_minute=1)
    assert client_for(alice).get("/api/research/experiments").status_code == 200
    assert client_for(alice).get("/api/research/experiments").status_code == 429
    assert client_for(bob).get("/api/research/experiments").status_code == 200


def test_refused_requests_do_not_count(client_for, alice, limits):
    limits(user_rate_per_minute=2)
    client = client_for(alice)
    statuses = [client.get("/api/research/experiments").status_code for _ in range(6)]
    assert statuses == [200, 200, 429, 429, 429, 429]


def test_anonymous_clients_are_limited_per_ip(alice, limits):
    limits(anon_rate_per_minute=2)
    assert [anon_attempt("10.0.0.1").status_code for _ in range(2)] == [401, 401]
    assert_rate_limited(anon_attempt("10.0.0.1"))
    assert anon_attempt("10.0.0.2").status_code == 401
    # A signed-in user from the limited address has a budget of their own.
    response = api_client().post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 429
    assert api_client(alice).get("/api/research/experiments", REMOTE_ADDR="10.0.0.1").status_code == 200


def test_x_forwarded_for_is_ignored_without_trusted_proxies(alice, limits, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    limits(anon_rate_per_minute=2)
    assert anon_attempt("10.0.0.1", "1.1.1.1").status_code == 401
    assert anon_attempt("10.0.0.1", "2.2.2.2").status_code == 401
    # A new forged address per request does not buy a new budget.
    assert_rate_limited(anon_attempt("10.0.0.1", "3.3.3.3"))


def test_x_forwarded_for_names_the_client_through_one_trusted_proxy(alice, limits, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    limits(anon_rate_per_minute=2)
    proxy = "10.0.0.254"
    assert [anon_attempt(proxy, "203.0.113.7").status_code for _ in range(2)] == [401, 401]
    assert_rate_limited(anon_attempt(proxy, "203.0.113.7"))
    # Clients behind the same proxy are told apart by what the proxy appended...
    assert anon_attempt(proxy, "198.51.100.9").status_code == 401
    # ...and an entry the client forged in front of it changes nothing.
    assert_rate_limited(anon_attempt(proxy, "198.51.100.1, 203.0.113.7"))


def test_two_trusted_proxies_use_the_second_to_last_entry(alice, limits, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    limits(anon_rate_per_minute=1)
    assert anon_attempt("10.0.0.254", "forged, 203.0.113.7, 10.0.0.253").status_code == 401
    assert_rate_limited(anon_attempt("10.0.0.254", "other-forgery, 203.0.113.7, 10.0.0.253"))
    assert anon_attempt("10.0.0.254", "203.0.113.8, 10.0.0.253").status_code == 401
