"""``manage.py create_experiment`` and ``manage.py export_experiment``."""

import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command

from agents.models import AgentRun
from experiments.models import Experiment, ExperimentStatus
from tests.agents.conftest import Agent
from tests.factories import agent_client, api_client, started_experiment

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TOKEN_LINE = re.compile(r"RESEARCH_RUN_ID=(run_\S+) RESEARCH_RUN_TOKEN=(rt_\S+)")


def run_command(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


# create_experiment -----------------------------------------------------------------------


def test_create_experiment_prints_each_runs_token_once(alice):
    output = run_command(
        "create_experiment", "Refactor billing", "--agents", "3", "--agent-type", "codex", "--owner", "alice"
    )

    experiment = Experiment.objects.get(name="Refactor billing")
    assert experiment.status == ExperimentStatus.CREATED
    assert experiment.public_id in output
    assert experiment.role_of(alice) == "owner"
    printed = dict(TOKEN_LINE.findall(output))
    runs = list(AgentRun.objects.filter(experiment=experiment))
    assert set(printed) == {run.public_id for run in runs}
    assert {run.agent_type for run in runs} == {"codex"}
    for run in runs:
        assert run.token_hash == hashlib.sha256(printed[run.public_id].encode()).hexdigest()
    # Only the hash is kept: the detail never shows a token again.
    detail = api_client(alice).get(f"/api/research/experiments/{experiment.public_id}").json()
    assert all("token" not in run for run in detail["runs"])


def test_create_experiment_with_start_gives_tokens_that_report(alice):
    output = run_command("create_experiment", "Live", "--agents", "2", "--owner", "alice", "--start")

    experiment = Experiment.objects.get(name="Live")
    assert experiment.status == ExperimentStatus.RUNNING
    for run_id, token in TOKEN_LINE.findall(output):
        response = agent_client(token).post(f"/api/research/agents/{run_id}/progress", {"progress_percent": 5})
        assert response.status_code == 200
        assert response.json()["status"] == "running"


def test_create_experiment_as_json(alice):
    body = json.loads(
        run_command("create_experiment", "J", "--owner", "alice", "--json", "--config", '{"repo": "acme/x"}')
    )

    experiment = Experiment.objects.get(public_id=body["id"])
    assert experiment.config == {"repo": "acme/x"}
    [run] = body["runs"]
    assert run["token"].startswith("rt_")
    assert AgentRun.objects.get(public_id=run["id"]).experiment == experiment


def test_create_experiment_records_its_events(alice):
    body = json.loads(run_command("create_experiment", "E", "--owner", "alice", "--json", "--start"))

    events = api_client(alice).get("/api/research/events", {"experiment": body["id"]}).json()["results"]
    assert [e["event_type"] for e in events] == ["experiment_created", "experiment_started"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["X", "--owner", "nobody"], "No user named"),
        (["X", "--owner", "alice", "--agents", "0"], "--agents"),
        (["X", "--owner", "alice", "--agent-type", "bad type!"], "--agent-type"),
        (["X", "--owner", "alice", "--config", "[1]"], "--config"),
        (["X", "--owner", "alice", "--config", "{nope"], "--config"),
        (["   ", "--owner", "alice"], "name"),
    ],
)
def test_create_experiment_refuses_bad_arguments_and_creates_nothing(alice, args, message):
    with pytest.raises(CommandError, match=message):
        run_command("create_experiment", *args)

    assert not Experiment.objects.exists()


# export_experiment -----------------------------------------------------------------------


@pytest.fixture
def reported(alice):
    experiment, issued = started_experiment(alice, agents=2)
    first, second = (Agent(run=i.run, token=i.token) for i in issued)
    first.post("progress", {"progress_percent": 40, "metrics": {"tokens_used": 100}})
    first.post("metrics", {"points": [{"name": "loss", "value": 1.0 / (i + 1)} for i in range(300)]})
    first.post("logs", {"lines": [{"level": "info", "message": f'line {i}, with "quotes"'} for i in range(20)]})
    second.post("metrics", {"points": [{"name": "acc", "value": 0.5, "step": 3}]})
    second.post("fail", {"error": "boom"})
    return experiment


def api_export(user, experiment, body) -> bytes:
    response = api_client(user).post(f"/api/research/export/{experiment.public_id}", body, format="json")
    assert response.status_code == 200

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


@pytest.mark.parametrize(
    ("fmt", "include"),
    [
        ("json", None),
        ("ndjson", None),
        ("csv", None),
        ("json", ["logs", "runs"]),
        ("csv", ["logs"]),
        ("ndjson", ["events"]),
    ],
)
def test_export_experiment_writes_the_same_bytes_as_the_api(reported, alice, tmp_path, capsys, fmt, include):
    path = tmp_path / f"out.{fmt}"
    args = ["export_experiment", reported.public_id, "--format", fmt, "-o", str(path)]
    if include:
        args += ["--include", ",".join(include)]

    call_command(*args, stdout=io.StringIO())

    body = {"format": fmt, **({"include": include} if include else {})}
    assert path.read_bytes() == api_export(alice, reported, body)


def test_export_experiment_shows_a_progress_bar_to_the_last_record(reported, tmp_path, capsys):
    from experiments.export import count_records

    total = count_records(reported, ["runs", "metrics", "events", "logs"])

    call_command("export_experiment", reported.public_id, "-o", str(tmp_path / "x.json"), stdout=io.StringIO())

    progress = capsys.readouterr().err
    assert f"{total}/{total}" in progress
    assert reported.public_id in progress


def test_export_experiment_defaults_to_a_file_named_after_it(reported, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    call_command("export_experiment", reported.public_id, "--format", "ndjson", "--no-progress", stdout=io.StringIO())

    lines = (tmp_path / f"{reported.public_id}.ndjson").read_text().splitlines()
    assert json.loads(lines[0])["record"] == "experiment"
    assert sum(json.loads(line)["record"] == "metric" for line in lines) == 301


@pytest.mark.parametrize(
    ("args", "message"),
    [(["exp_missing"], "No experiment"), (["{id}", "--include", "runs,secrets"], "Unknown part")],
)
def test_export_experiment_refuses_bad_arguments(reported, args, message):
    args = [a.format(id=reported.public_id) for a in args]

    with pytest.raises(CommandError, match=message):
        call_command("export_experiment", *args, "--no-progress", stdout=io.StringIO())


# Every operator command -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["create_experiment", "Refactor billing", "--owner", "alice"],
        ["export_experiment", "exp_missing"],
        ["prune_events", "--days", "30"],
        ["loadtest", "--clients", "1", "--no-bare"],
    ],
)
def test_a_command_on_an_unmigrated_database_says_to_migrate_and_changes_nothing(command, tmp_path):
    database = tmp_path / "fresh.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": "research_site.settings"}
    env.pop("DATABASE_TEST_NAME", None)
    completed = subprocess.run(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 1
    assert "unapplied migration" in completed.stderr and "Run `manage.py migrate` first." in completed.stderr
    assert "Traceback" not in completed.stderr
    tables = sqlite3.connect(database).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == []
