"""Finding the external services some tests need, and skipping (or, in CI, failing)
clearly when one is missing."""

import os
import shutil
import socket
from urllib.parse import urlsplit

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers

CI = os.environ.get("CI", "").lower() == "true"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def need(available: bool, reason: str) -> None:
    if available:
        return
    if CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def postgres_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return (
        url
        if url.startswith(("postgres://", "postgresql://"))
        else os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)


def require_postgres() -> str:
    url = postgres_url()
    need(_reachable(url, 5432), f"PostgreSQL is not reachable at {url}")
    return url


def require_redis() -> str:
    url = redis_url()
    need(_reachable(url, 6379), f"Redis is not reachable at {url}")
    return url


def require_chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    need(
        os.path.exists(browser) and os.path.exists(driver),
        "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
    )
    return browser, driver


def require_test_database_on_postgres() -> None:
    from django.db import connection

    need(
        connection.vendor == "postgresql",
        "this test runs on PostgreSQL: set DATABASE_URL=postgres://… (make test does when reachable)",
    )


def reset_channel_layer() -> None:
    """Forget the in-memory layer's channels and groups between tests."""
    layer = channel_layers.backends.get("default")
    # Only the in-memory layer: Redis layers keep nothing in the process, and the pub/sub
    # one looks attributes up per event loop, raising outside a loop instead of answering.
    if isinstance(layer, InMemoryChannelLayer):
        layer.channels = {}
        layer.groups = {}
