"""A real Research Engine server for tests: daphne in a subprocess on a free port.

Each server gets its own SQLite file, copied from a template migrated once per test
session (with the users below already in it), and runs with its background work on
(approval sweeps, presence), exactly as ``daphne research_site.asgi:application`` runs in
production, minus Redis. Use the ``daphne_server`` fixture::

    # in a conftest.py:
    from tests.live import daphne_server, live_database_template, shared_daphne_server  # noqa: F401

    @pytest.mark.daphne
    def test_it(daphne_server):
        with daphne_server.api("operator") as api:      # httpx, signed in
            api.post("experiments", json={"name": "x"})

``shared_daphne_server`` is one server for a whole module, when tests need no restart
and no config change of their own.
``restart()`` stops the process and starts a fresh one on the same port and database;
``sql()`` reads or writes the server's database directly (sqlite3), for what no API does.
"""

import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).parent / "daphne"
START_TIMEOUT_SECONDS = 60.0
PASSWORD = "live-server-password"
# username -> is_staff; every one of them has PASSWORD and an API token in TOKENS.
USERS = {"operator": False, "viewer": False, "outsider": False, "root": True}
TOKENS = {name: secrets.token_hex(20) for name in USERS}

CREATE_USERS = f"""
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
User = get_user_model()
for name, staff in {USERS!r}.items():
    user = User.objects.create_user(username=name, password={PASSWORD!r}, is_staff=staff, is_superuser=staff)
    Token.objects.create(user=user, key={TOKENS!r}[name])
"""


def wait_for(condition, timeout: float = 30.0, what: str = "the condition", interval: float = 0.05):
    """``condition()``'s first truthy value, polled: for state another process holds (a
    server's database, a child process), which no event in this process announces."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(database: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CI_DATABASE_URL")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "research_site.settings",
            "DATABASE_URL": f"sqlite:///{database}",
            "BACKGROUND_TASKS": "1",
            "APPROVAL_SWEEP_SECONDS": "0.5",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def manage(database: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``manage.py <args>`` against the given database; fails the test if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=server_environment(database, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@dataclass
class LiveServer:
    directory: Path
    database: Path
    port: int = field(default_factory=free_port)
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / f"daphne-{self.restarts}.log"

    def start(self) -> None:
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(DAPHNE), "-b", "127.0.0.1", "-p", str(self.port), "research_site.asgi:application"],
            cwd=ROOT,
            env=server_environment(self.database, **self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_for_health()

    def _wait_for_health(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"daphne exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"daphne did not answer /health within {START_TIMEOUT_SECONDS} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-5000:] for path in sorted(self.directory.glob("daphne-*.log"))
        )

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return manage(self.database, *args, **self.env)

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.database, timeout=30) as connection:
            return connection.execute(statement, params).fetchall()

    # The API, as a signed-in user --------------------------------------------------------

    def token(self, username: str) -> str:
        """The user's API token (made with the template; ``POST auth/token`` gives the same)."""
        return TOKENS[username]

    def api(self, username: str) -> httpx.Client:
        """An httpx client on ``/api/research/`` signed in as ``username``."""
        return httpx.Client(
            base_url=f"{self.url}/api/research/",
            headers={"Authorization": f"Token {self.token(username)}"},
            timeout=30,
        )


@pytest.fixture(scope="session")
def live_database_template(tmp_path_factory) -> Path:
    """A migrated SQLite database with the test users, made once per session."""
    path = tmp_path_factory.mktemp("live-template") / "template.sqlite3"
    manage(path, "migrate", "--noinput")
    manage(path, "shell", "-c", CREATE_USERS)
    return path


def _serve(template: Path):
    directory = Path(tempfile.mkdtemp(prefix="re-live-"))
    database = directory / "db.sqlite3"
    shutil.copyfile(template, database)
    server = LiveServer(directory=directory, database=database)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def daphne_server(live_database_template):
    """A running daphne of its own, with a fresh copy of the template database: for tests
    that restart it or change its runtime config."""
    yield from _serve(live_database_template)


@pytest.fixture(scope="module")
def shared_daphne_server(live_database_template):
    """One running daphne for a whole test module (each test makes its own experiments)."""
    yield from _serve(live_database_template)
