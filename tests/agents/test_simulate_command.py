"""``manage.py simulate_experiment`` against a real server: simulated agents go through the
public API (agent client, agent socket) until they are done or stopped."""

import signal
import subprocess
import sys

import pytest

from tests.live import PASSWORD, ROOT, server_environment, wait_for

pytestmark = pytest.mark.daphne

TIMEOUT = 120


def simulate(server, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "simulate_experiment", "--url", server.url, *args],
        cwd=ROOT,
        env=server_environment(server.database),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = TIMEOUT) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"{out}\n{err}"
    return out, err


def experiment_of(output: str) -> str:
    return next(word for word in output.split() if word.startswith("exp_"))


@pytest.fixture
def operator(shared_daphne_server):
    with shared_daphne_server.api("operator") as client:
        yield client


def test_a_simulation_runs_every_agent_to_the_end_through_the_api(shared_daphne_server, operator):
    process = simulate(
        shared_daphne_server,
        "--username", "operator", "--password", PASSWORD,
        "--agents", "3", "--speed", "100", "--seed", "3", "--fail-rate", "0", "--auto-approve",
    )  # fmt: skip
    out, err = finish(process)

    experiment_id = experiment_of(out)
    assert "Done: 3 completed." in out
    assert experiment_id in err  # the progress bar
    results = operator.get(f"results/{experiment_id}").json()
    assert results["experiment"]["status"] == "completed"
    assert results["summary"]["by_status"] == {"completed": 3}
    assert results["summary"]["total_tokens"] > 0
    assert results["summary"]["total_cost"] > 0
    assert all(row["result"] for row in results["runs"])
    metrics = operator.get(f"metrics/{experiment_id}").json()
    for run in results["runs"]:
        assert set(metrics["summary"][run["run_id"]]) == {"loss", "accuracy", "reward", "tokens_per_step"}
        assert metrics["summary"][run["run_id"]]["loss"]["count"] >= 120
    types = [
        e["event_type"]
        for e in operator.get("events", params={"experiment": experiment_id, "page_size": 100}).json()["results"]
    ]
    assert "plan_ready" in types
    assert "plan_approved" in types
    assert "log_appended" in types


def test_a_simulation_of_an_existing_experiment_with_failures(shared_daphne_server, operator):
    created = operator.post(
        "experiments", json={"name": "Sim", "agents": [{"agent_type": "codex"}, {"agent_type": "aider"}]}
    ).json()

    process = simulate(
        shared_daphne_server,
        "--username", "operator", "--password", PASSWORD, "--experiment", created["id"],
        "--speed", "100", "--fail-rate", "1", "--plan-rate", "0", "--no-progress",
    )  # fmt: skip
    out, _err = finish(process)

    assert "Done: 2 failed." in out
    results = operator.get(f"results/{created['id']}").json()
    assert results["experiment"]["status"] == "failed"
    assert {row["status"] for row in results["runs"]} == {"failed"}
    assert all(row["error"] for row in results["runs"])


def running_experiment(operator, name: str) -> dict:
    def find():
        return operator.get("experiments", params={"search": name, "status": "running"}).json()["results"]

    [experiment] = wait_for(find, what=f"the simulated experiment {name!r}")
    return experiment


def test_a_simulation_ends_when_an_operator_stops_the_experiment(shared_daphne_server, operator):
    token = shared_daphne_server.token("operator")
    process = simulate(
        shared_daphne_server,
        "--token", token, "--agents", "2", "--speed", "20", "--plan-rate", "1", "--fail-rate", "0",
        "--no-progress", "--name", "Stopped by an operator",
    )  # fmt: skip
    try:
        experiment = running_experiment(operator, "Stopped by an operator")
        wait_for(
            lambda: operator.get(
                "agents", params={"experiment": experiment["id"], "status": "awaiting_approval"}
            ).json()["count"],
            what="a plan awaiting approval",
        )
        assert operator.post(f"experiments/{experiment['id']}/stop").status_code == 200

        out, _err = finish(process, timeout=30)
    finally:
        process.kill()
    assert "Done: 2 stopped." in out


def test_ctrl_c_stops_the_simulated_runs(shared_daphne_server, operator):
    process = simulate(
        shared_daphne_server,
        "--username", "operator", "--password", PASSWORD, "--agents", "2", "--speed", "2", "--plan-rate", "0",
        "--fail-rate", "0", "--no-progress", "--name", "Interrupted",
    )  # fmt: skip
    try:
        experiment = running_experiment(operator, "Interrupted")
        wait_for(
            lambda: (
                operator.get("agents", params={"experiment": experiment["id"], "status": "running"}).json()["count"]
                == 2
            ),
            what="both agents running",
        )
        process.send_signal(signal.SIGINT)
        out, _err = finish(process, timeout=30)
    finally:
        process.kill()

    assert "Interrupted" in out or "stopping" in _err
    runs = operator.get("agents", params={"experiment": experiment["id"]}).json()["results"]
    assert {run["status"] for run in runs} == {"stopped"}
    assert operator.get(f"experiments/{experiment['id']}").json()["status"] == "stopped"


def test_simulate_experiment_needs_credentials(shared_daphne_server):
    process = simulate(shared_daphne_server, "--agents", "1")
    _out, err = process.communicate(timeout=TIMEOUT)

    assert process.returncode != 0
    assert "--username" in err
