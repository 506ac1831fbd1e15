"""Helpers for the dashboard's browser tests and screenshots, around ``tests/live.py``.

The server under test is a real daphne (``tests.live.LiveServer``): Django's live-server
test cases are WSGI and have no WebSockets. Changes are made the way users and agents
make them: over the public REST API (httpx), agents with their run tokens.
``scripts/screenshots.py`` uses the same pieces.
"""

import contextlib
import shutil
import tempfile
import time

import httpx

from tests.live import PASSWORD, USERS, LiveServer


def wait_until(predicate, timeout: float, message: str, interval: float = 0.1):
    """Poll ``predicate`` until it answers something truthy; fail with ``message``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(interval)


def add_users(server: LiveServer, *usernames: str) -> None:
    """More users than the template has, with the same password."""
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        f"for name in {list(usernames)!r}:\n"
        f"    get_user_model().objects.create_user(name, password={PASSWORD!r})\n",
    )


class Client:
    """A user of the REST API with their API token."""

    def __init__(self, server: LiveServer, username: str):
        self.server = server
        self.username = username
        if username in USERS:
            token = server.token(username)
        else:
            response = httpx.post(
                f"{server.url}/api/research/auth/token",
                json={"username": username, "password": PASSWORD},
                timeout=30,
            )
            response.raise_for_status()
            token = response.json()["token"]
        self.http = httpx.Client(
            base_url=f"{server.url}/api/research/",
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )

    def call(self, method: str, path: str, expect: int | tuple = (200, 201, 204), **kwargs):
        response = self.http.request(method, path, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def create_experiment(self, name: str, agents: list[str], description: str = "", **extra) -> dict:
        body = {
            "name": name,
            "description": description,
            "agents": [{"agent_type": kind, "name": label} for label, kind in _agent_specs(agents)],
            **extra,
        }
        return self.call("POST", "experiments", json=body, expect=201)

    def start(self, experiment_id: str) -> dict:
        return self.call("POST", f"experiments/{experiment_id}/start")

    def add_member(self, experiment_id: str, username: str, role: str) -> dict:
        return self.call("POST", f"experiments/{experiment_id}/members", json={"username": username, "role": role})

    def run(self, run_id: str) -> dict:
        return self.call("GET", f"agents/{run_id}")

    def events(self, experiment_id: str) -> list[dict]:
        events, since = [], 0
        while True:
            page = self.call("GET", "events", params={"experiment": experiment_id, "since": since, "page_size": 100})
            events += page["results"]
            if not page["next"]:
                return events
            since = events[-1]["seq"]


def _agent_specs(agents: list[str]):
    for agent in agents:
        label, _, kind = agent.partition(":")
        yield label, kind or "claude_code"


class Agent:
    """An agent reporting on its own run over REST with its run token."""

    def __init__(self, server: LiveServer, run: dict):
        self.run_id = run["id"]
        self.name = run.get("name") or run["id"]
        self.http = httpx.Client(
            base_url=f"{server.url}/api/research/agents/{self.run_id}/",
            headers={"Authorization": f"Bearer {run['token']}"},
            timeout=30,
        )
        self.step = 0

    def _post(self, kind: str, body: dict, expect: int = 200) -> dict:
        response = self.http.post(kind, json=body)
        assert response.status_code == expect, f"{kind}: {response.status_code} {response.text}"
        return response.json()

    def progress(self, percent: float, action: str = "", tokens=None, cost=None, elapsed=None):
        metrics = {"tokens_used": tokens, "cost": cost, "elapsed_time": elapsed}
        body = {"progress_percent": percent, "current_action": action}
        metrics = {k: v for k, v in metrics.items() if v is not None}
        if metrics:
            body["metrics"] = metrics
        return self._post("progress", body)

    def metrics(self, **values: float):
        self.step += 1
        points = [{"name": name, "value": value, "step": self.step} for name, value in values.items()]
        return self._post("metrics", {"points": points})

    def log(self, message: str, level: str = "info"):
        return self._post("logs", {"lines": [{"level": level, "message": message}]})

    def plan(self, plan):
        return self._post("plan", {"plan": plan})

    def complete(self, result=None):
        return self._post("complete", {"result": result or {"ok": True}})

    def report_status(self, kind: str, body: dict) -> int:
        """A report whose status code the caller checks (409 after a stop)."""
        return self.http.post(kind, json=body).status_code

    def close(self):
        self.http.close()


def chrome(browser: str, driver: str, *, width: int = 1280, height: int = 900, mobile: bool = False):
    """Headless Debian Chromium through Selenium, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-color-profile=srgb",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver)
    web = webdriver.Chrome(service=service, options=options)
    web.profile_dir = profile
    web.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )
    return web


def quit_chrome(web) -> None:
    try:
        with contextlib.suppress(Exception):  # a browser that already died has nothing to quit
            web.quit()
    finally:
        shutil.rmtree(getattr(web, "profile_dir", ""), ignore_errors=True)
