"""Metric ingestion through the REST batch endpoint, and MLflow's ``log-batch`` beside it.

    .venv/bin/python -m tests.bench.ingest [--seconds 15] [--skip-mlflow]

Research Engine: ``POST /api/research/agents/{run_id}/metrics`` with the run token, 1,000
points a call, served by daphne on PostgreSQL (database ``bench_research``, migrated
here), with one daphne process and with two (agents alternate between the two ports).

MLflow: installed by this script into its own virtual environment (``/tmp/mlflow-venv``,
``pip install mlflow``), ``mlflow server --workers 4`` backed by PostgreSQL (database
``bench_mlflow``, re-created) and by SQLite, ``POST /api/2.0/mlflow/runs/log-batch`` with
1,000 metrics a call. Same client code, same points (10 metrics × 100 steps a call, each
with a timestamp), one client process per agent, 1 and 4 agents, each agent on its own
fresh run. Prints Markdown tables.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.bench import load
from tests.bench.servers import (
    DEFAULT_DATABASE,
    CpuMeter,
    daphne_servers,
    database_url,
    ensure_database,
    free_port,
    latency_summary,
    machine_line,
    prepare_database,
    print_table,
    stop_process,
    wait_for_port,
)

TMP = Path(tempfile.gettempdir())
MLFLOW_VENV = Path(os.environ.get("MLFLOW_VENV", str(TMP / "mlflow-venv")))
MLFLOW_DATABASE = "bench_mlflow"
MLFLOW_DIR = TMP / "bench-mlflow"
MLFLOW_WORKERS = 4
AGENT_COUNTS = (1, 4)


# Research Engine ---------------------------------------------------------------------------


def research_runs(count: int) -> list[tuple[str, str]]:
    """A started experiment with ``count`` fresh runs; [(run public id, token), …]."""
    from django.contrib.auth import get_user_model

    from experiments import lifecycle

    user, _ = get_user_model().objects.get_or_create(username="bench-ingest")
    experiment, issued = lifecycle.create_experiment(
        name=f"bench ingest {count} agents {time.strftime('%H:%M:%S')}",
        by=user,
        agents=[lifecycle.RunSpec(agent_type="bench_agent", name=f"agent-{i}") for i in range(count)],
    )
    lifecycle.start_experiment(experiment=experiment, by=user)
    return [(i.run.public_id, i.token) for i in issued]


def research_phase(servers: list, database: str, agents: int, seconds: float, *, idempotency_key: bool) -> dict:
    ports = [port for port, _process in servers]
    targets = [
        load.Target(
            kind="research",
            url=f"http://127.0.0.1:{ports[i % len(ports)]}/api/research/agents/{run_id}/metrics",
            run_id=run_id,
            headers={"Authorization": f"Bearer {token}"},
            idempotency_key=idempotency_key,
        )
        for i, (run_id, token) in enumerate(research_runs(agents))
    ]
    load.warm(targets)
    pids = [process.pid for _port, process in servers]
    return load.push(targets, seconds=seconds, meter=lambda: CpuMeter(pids, database))


# MLflow ------------------------------------------------------------------------------------


def ensure_mlflow() -> str:
    """Install MLflow into its own virtual environment (once); returns its version."""
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        print(f"installing MLflow into {MLFLOW_VENV} …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "mlflow", "psycopg2-binary"], check=True)
    out = subprocess.run(
        [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def mlflow_backend_uri(backend: str) -> str:
    if backend == "postgresql":
        ensure_database(MLFLOW_DATABASE, fresh=True)
        return database_url(MLFLOW_DATABASE).replace("postgres://", "postgresql+psycopg2://", 1)
    path = MLFLOW_DIR / "mlflow.db"
    path.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def start_mlflow(backend: str) -> tuple[int, subprocess.Popen]:
    MLFLOW_DIR.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(MLFLOW_DIR / "artifacts", ignore_errors=True)
    port = free_port()
    log = open(MLFLOW_DIR / f"server-{backend}.log", "wb")  # noqa: SIM115 (kept open while it runs)
    process = subprocess.Popen(
        [
            str(MLFLOW_VENV / "bin" / "mlflow"),
            "server",
            "--backend-store-uri",
            mlflow_backend_uri(backend),
            "--default-artifact-root",
            f"file://{MLFLOW_DIR / 'artifacts'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(MLFLOW_WORKERS),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_for_port(port, timeout=240, process=process)
    # Every worker has imported MLflow and answers (uvicorn logs each one's startup).
    log_path = Path(log.name)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready = log_path.read_text(errors="replace").count("Application startup complete")
        try:
            healthy = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and ready >= MLFLOW_WORKERS:
            return port, process
        time.sleep(1)
    stop_process(process)
    raise RuntimeError(f"MLflow on {backend} did not become healthy; see {log_path}")


def _mlflow_post(url: str, body: dict) -> dict:
    """A setup call, retried: a worker still starting may drop the first connections."""
    for attempt in range(5):
        try:
            response = httpx.post(url, json=body, timeout=120)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as exc:
            client_error = isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500
            if client_error or attempt == 4:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def mlflow_runs(port: int, count: int) -> list[str]:
    api = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    name = f"bench-{count}-{time.time_ns()}"
    try:
        experiment_id = _mlflow_post(f"{api}/experiments/create", {"name": name})["experiment_id"]
    except httpx.HTTPStatusError:
        # A retried create whose first attempt went through: the experiment exists.
        response = httpx.get(f"{api}/experiments/get-by-name", params={"experiment_name": name}, timeout=120)
        response.raise_for_status()
        experiment_id = response.json()["experiment"]["experiment_id"]
    return [
        _mlflow_post(
            f"{api}/runs/create",
            {"experiment_id": experiment_id, "run_name": f"agent-{i}", "start_time": int(time.time() * 1000)},
        )["run"]["info"]["run_id"]
        for i in range(count)
    ]


def mlflow_phase(port: int, pid: int, backend: str, agents: int, seconds: float) -> dict:
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/log-batch"
    targets = [load.Target(kind="mlflow", url=url, run_id=run_id) for run_id in mlflow_runs(port, agents)]
    load.warm(targets)
    database = MLFLOW_DATABASE if backend == "postgresql" else None
    return load.push(targets, seconds=seconds, meter=lambda: CpuMeter([pid], database))


def research_label(processes: int, key: bool) -> str:
    plural = "es" if processes > 1 else ""
    return f"Research Engine, {processes} daphne process{plural}, {'with' if key else 'no'} Idempotency-Key"


# Report ------------------------------------------------------------------------------------


def row(system: str, result: dict) -> list:
    lat = latency_summary(result["latencies"])
    cpu = result["cpu_ms_per_point"]
    return [
        system,
        result["agents"],
        f"{result['points_per_second']:,.0f}",
        f"{lat['p50']:.1f}",
        f"{lat['p99']:.1f}",
        result["calls"],
        result["failures"],
        "?" if cpu is None else f"{cpu * 1000:.1f}",
        "?" if cpu is None else f"{2000 / cpu:,.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per phase")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-two-processes", action="store_true")
    args = parser.parse_args()

    print(f"machine: {machine_line()}")
    prepare_database(args.database)

    results: dict[tuple[str, int], dict] = {}
    # (daphne processes, Idempotency-Key on every call as the agent client sends it)
    layouts = [(1, True), (1, False)] if args.skip_two_processes else [(1, True), (1, False), (2, True)]
    for processes, key in layouts:
        with daphne_servers(args.database, processes) as servers:
            for agents in AGENT_COUNTS:
                label = research_label(processes, key)
                print(f"{label}, {agents} agent(s) …", flush=True)
                results[(label, agents)] = research_phase(
                    servers, args.database, agents, args.seconds, idempotency_key=key
                )
                print("  " + " | ".join(str(c) for c in row(label, results[(label, agents)])), flush=True)

    mlflow_version = None
    if not args.skip_mlflow:
        mlflow_version = ensure_mlflow()
        for backend in ("postgresql", "sqlite"):
            port, process = start_mlflow(backend)
            try:
                for agents in AGENT_COUNTS:
                    label = f"MLflow {mlflow_version}, {MLFLOW_WORKERS} workers, {backend}"
                    print(f"{label}, {agents} agent(s) …", flush=True)
                    results[(label, agents)] = mlflow_phase(port, process.pid, backend, agents, args.seconds)
                    print("  " + " | ".join(str(c) for c in row(label, results[(label, agents)])), flush=True)
            finally:
                stop_process(process)

    print()
    print(f"Metric ingestion, 1,000 points a call, {args.seconds:.0f} s per row")
    print()
    print_table(
        [
            "server",
            "agents",
            "points/s",
            "p50 ms/call",
            "p99 ms/call",
            "calls",
            "errors",
            "server CPU ms / 1,000 points",
            "points/s 2 free cores allow",
        ],
        [row(label, result) for (label, _agents), result in results.items()],
    )
    if mlflow_version:
        ours = research_label(1, True)
        print()
        print(f"Ratio {ours} / MLflow")
        print()
        rows = []
        for backend in ("postgresql", "sqlite"):
            theirs = f"MLflow {mlflow_version}, {MLFLOW_WORKERS} workers, {backend}"
            for agents in AGENT_COUNTS:
                a, b = results[(ours, agents)], results[(theirs, agents)]
                cpu = (
                    f"{b['cpu_ms_per_point'] / a['cpu_ms_per_point']:.1f}×"
                    if a["cpu_ms_per_point"] and b["cpu_ms_per_point"]
                    else "?"
                )
                rows.append([backend, agents, f"{a['points_per_second'] / b['points_per_second']:.1f}×", cpu])
        print_table(["MLflow backend", "agents", "points/s ratio", "server CPU per point: MLflow / ours"], rows)


if __name__ == "__main__":
    main()
