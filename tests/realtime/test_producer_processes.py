"""Two producer processes write to one experiment at the same moment as the serving
process; every socket of the serving process still gets every seq once, in order.

The processes share a SQLite file database. With the in-memory layer nothing connects
them: the other processes' events reach the sockets only through the hub's sweep of the
event store (and its gap repair, as the serving process's own events arrive live between
them). With Redis they arrive live through the layer.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests import services

ROOT = Path(__file__).resolve().parents[2]
PER_PRODUCER = 25


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory, django_db_setup, django_db_blocker) -> Path:
    """A SQLite file with the schema: a copy of the test database when that is SQLite
    (no second migrate), else migrated once for the session."""
    path = tmp_path_factory.mktemp("shared-db") / "template.sqlite3"
    with django_db_blocker.unblock():
        from django.db import connection

        if connection.vendor == "sqlite":
            connection.ensure_connection()
            target = sqlite3.connect(path)
            connection.connection.backup(target)
            target.close()
            return path
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "DJANGO_SETTINGS_MODULE": "research_site.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    return path


def watch(tmp_path: Path, template: Path, redis_url: str | None) -> dict:
    database = tmp_path / "shared.sqlite3"
    shutil.copyfile(template, database)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_SETTINGS_MODULE": "research_site.settings",
        "WS_SWEEP_SECONDS": "0.3",
        "BACKGROUND_TASKS": "0",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_TEST_NAME", None)
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CHANNEL_LAYER_PREFIX"] = f"two-producers-{os.getpid()}-{tmp_path.name}"
    completed = subprocess.run(
        [sys.executable, "-m", "tests.realtime.multiprocess_watcher", str(tmp_path), str(PER_PRODUCER)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def assert_exactly_once(result: dict) -> None:
    start, final = result["start"], result["final"]
    # Experiment created and started, then 2 × 60 reports from the producers (plus one
    # agent_initialized per run) and 30 from the serving process (plus one).
    assert final == start + 2 * (PER_PRODUCER + 2) + PER_PRODUCER // 2 + 1
    a, b = result["producers"]["a"], result["producers"]["b"]
    assert len(a) == len(b) == PER_PRODUCER
    assert min(b) < max(a) and min(a) < max(b), "the producers did not write at the same time"
    for name, received in result["received"].items():
        first = 1 if name == "path since 0" else start + 1
        assert received["unexpected"] == [], name
        assert received["seqs"] == list(range(first, final + 1)), name


def test_two_producer_processes_with_the_in_memory_layer(tmp_path, migrated_database):
    assert_exactly_once(watch(tmp_path, migrated_database, None))


@pytest.mark.redis
def test_two_producer_processes_through_redis(tmp_path, migrated_database):
    assert_exactly_once(watch(tmp_path, migrated_database, services.require_redis()))
