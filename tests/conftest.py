"""Shared fixtures: users alice/bob/charlie/dave/staff, API clients, services to require.

Tests that need PostgreSQL, Redis, daphne or Chromium ask for them with ``require_*``:
when the service is missing the test is skipped with the reason, except under
``CI=true``, where a missing service is a failure (CI always runs everything).
"""

import os

import pytest
from django.core.cache import cache, caches

from experiments import runtime_config
from tests import services
from tests.factories import api_client, make_user


@pytest.fixture(autouse=True)
def _fresh_process_state(settings):
    """Caches and the in-memory layer are per process; tests must not see each other's.

    Background work (approval sweep, presence, retention) is off unless a test starts it.
    """
    settings.BACKGROUND_TASKS = False
    # A deliberately slow password hash costs ~0.3 s per user; tests need no strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    caches["responses"].clear()
    runtime_config.invalidate()
    services.reset_channel_layer()
    yield
    cache.clear()
    runtime_config.invalidate()


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup, django_db_blocker):
    """PostgreSQL's connection pool keeps connections open after the last test, which
    would stop the test database from being dropped: close the pools first."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            if hasattr(connection, "close_pool"):
                connection.close_pool()


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def bob(db):
    return make_user("bob")


@pytest.fixture
def charlie(db):
    return make_user("charlie")


@pytest.fixture
def dave(db):
    return make_user("dave")


@pytest.fixture
def staff(db):
    return make_user("root", staff=True)


@pytest.fixture
def client_for():
    return api_client


@pytest.fixture
def anon():
    return api_client(None)


@pytest.fixture
def require_postgres():
    return services.require_postgres()


@pytest.fixture
def require_redis():
    return services.require_redis()


@pytest.fixture
def require_chromium():
    return services.require_chromium()


def pytest_report_header(config):
    return [
        f"database: {os.environ.get('DATABASE_URL', 'sqlite (default)')}",
        f"channel layer: {'redis' if os.environ.get('REDIS_URL') else 'in-memory (default)'}",
        f"CI: {os.environ.get('CI', 'false')}",
    ]
