"""Real processes for the scale-out tests: a private Redis, daphne servers and producers
sharing one SQLite file database (migrated once per test session, copied per test)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout} s")


def base_env(database_path: Path, redis_url: str | None) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database_path}",
        "BACKGROUND_TASKS": "1",
        "WS_SWEEP_SECONDS": "0.5",
        "DJANGO_SETTINGS_MODULE": "research_site.settings",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DATABASE_TEST_NAME", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CHANNEL_LAYER_PREFIX"] = f"scaleout-{os.getpid()}-{free_port()}"
    else:
        env.pop("REDIS_URL", None)
    return env


def migrate_template(directory: Path) -> Path:
    path = directory / "template.sqlite3"
    env = base_env(path, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return path


def copy_database(template: Path, directory: Path) -> Path:
    path = directory / f"db-{free_port()}.sqlite3"
    shutil.copyfile(template, path)
    return path


def run_script(env: dict, code: str, timeout: float = 60.0) -> dict:
    """Run Django code in a fresh process against ``env``'s database; it prints JSON."""
    script = "import django; django.setup()\n" + code
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def start_script(env: dict, code: str) -> subprocess.Popen:
    script = "import django; django.setup()\n" + code
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


class Daphne:
    def __init__(self, env: dict, port: int | None = None):
        self.port = port or free_port()
        self.env = env
        self.process = None

    def start(self) -> "Daphne":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--websocket-max-frame-size",
                "65536",
                "--websocket-max-message-size",
                "65536",
                "research_site.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("daphne did not answer /health")

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """``kill -9``: no goodbye to anyone."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class PrivateRedis:
    """A redis-server of our own on a free port, so killing it disturbs nobody else."""

    def __init__(self):
        self.port = free_port()
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
