"""``manage.py loadtest`` end to end, small: it starts daphne and the bare server itself,
runs a cell against each with clients in separate processes, and reports exactness."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import PASSWORD, daphne_server, live_database_template  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.daphne


def test_a_small_cell_against_both_servers_reports_every_event_once_in_order(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'loadtest.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "research_site.settings",
        "REDIS_URL": "",
    }
    env.pop("DATABASE_TEST_NAME", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    results = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "loadtest",
            "--clients",
            "20",
            "--rate",
            "10",
            "--duration",
            "2",
            "--processes",
            "2",
            "--json",
            str(results),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    cells = json.loads(results.read_text())["cells"]
    assert [cell["server"] for cell in cells] == ["Research Engine", "bare websockets"]
    for cell in cells:
        assert cell["connected"] == "20/20"
        assert (cell["lost"], cell["duplicated"], cell["out_of_order"]) == (0, 0, 0)
        # 20 events to each of 20 clients over about two seconds.
        assert cell["deliveries_per_s"] > 0
        assert cell["p99_ms"] < 5_000
    assert "| Research Engine | 20 | 10 |" in completed.stdout
    # The command removed its experiment from the database it was given.
    leftover = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-v",
            "0",
            "-c",
            "from experiments.models import Experiment; print(Experiment.objects.filter(name='loadtest').count())",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert leftover.stdout.strip() == "0"


def test_against_a_running_server_it_signs_in_measures_and_removes_its_experiment(daphne_server):  # noqa: F811
    completed = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "loadtest",
            "--url",
            daphne_server.url,
            "--username",
            "root",
            "--password",
            PASSWORD,
            "--clients",
            "10",
            "--rate",
            "10",
            "--duration",
            "1",
            "--no-bare",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "research_site.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "lost 0, dup 0, ooo 0, connected 10/10" in completed.stdout
    with daphne_server.api("root") as api:
        names = [e["name"] for e in api.get("experiments", params={"page_size": 100}).json()["results"]]
    assert "loadtest" not in names


def test_a_wrong_password_is_a_clear_error(daphne_server):  # noqa: F811
    completed = subprocess.run(
        [sys.executable, "manage.py", "loadtest", "--url", daphne_server.url, "--username", "root", "--password", "no"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "research_site.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1
    assert "Could not log in: 40" in completed.stderr  # 400 or 401, as the contract allows
    assert "Traceback" not in completed.stderr
