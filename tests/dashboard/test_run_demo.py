"""``manage.py run_demo`` (what ``make run`` starts): it prints the demo login, serves the
dashboard with daphne, streams a simulated experiment whose plans wait for approval, and
Ctrl-C stops the server and the simulated agents."""

import shutil
import signal
import subprocess
import sys

import httpx
import psutil
import pytest

from dashboard.management.commands.run_demo import DEMO_NAME, DEMO_PASSWORD, DEMO_USERNAME
from tests.live import ROOT, free_port, live_database_template, server_environment, wait_for  # noqa: F401

pytestmark = pytest.mark.daphne


def answers(url: str):
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_demo_streams_a_plan_for_approval_and_ctrl_c_stops_everything(live_database_template, tmp_path):  # noqa: F811
    database = tmp_path / "db.sqlite3"
    shutil.copyfile(live_database_template, database)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "run_demo", "--port", str(port), "--access-log", str(tmp_path / "access.log")],
        cwd=ROOT,
        env=server_environment(database),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As a shell starts a background job (`make run &`): SIGINT ignored. Ctrl-C must
        # still stop it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
    )
    try:
        wait_for(lambda: answers(url), 60, "/health", interval=0.2)
        token = httpx.post(
            f"{url}/api/research/auth/token", json={"username": DEMO_USERNAME, "password": DEMO_PASSWORD}
        ).json()["token"]
        api = httpx.Client(base_url=f"{url}/api/research/", headers={"Authorization": f"Token {token}"}, timeout=10)
        experiment = wait_for(
            lambda: next((e for e in api.get("experiments").json()["results"] if e["name"] == DEMO_NAME), None),
            30,
            "the demo experiment",
        )
        assert experiment["status"] == "running"

        def awaiting():
            runs = api.get("agents", params={"experiment": experiment["id"], "page_size": 100}).json()["results"]
            return [r for r in runs if r["status"] == "awaiting_approval"]

        # Within seconds: agents report, and a plan waits for a human.
        waiting = wait_for(awaiting, 60, "a plan awaiting approval")
        assert waiting[0]["plan"]
        events = api.get("events", params={"experiment": experiment["id"]}).json()["count"]
        assert events > 10
        children = psutil.Process(demo.pid).children(recursive=True)
        assert len(children) >= 2  # daphne and simulate_experiment

        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert f"Research Engine is running at {url}/" in output
    assert f"Log in as  {DEMO_USERNAME} / {DEMO_PASSWORD}" in output
    assert f"{url}/experiments/{experiment['id']}/" in output
    assert "Stopping" in output
    assert "POST /api/research" not in output  # requests go to the access log, not the terminal
    assert "POST /api/research/agents/" in (tmp_path / "access.log").read_text()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    assert not answers(url)
