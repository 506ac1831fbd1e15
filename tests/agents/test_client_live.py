"""The agent client against a real server: daphne in a subprocess, nothing mocked.

Each test creates an experiment through the REST API as an operator would, runs the
client as an agent would, and checks the outcome through the REST API.
"""

import http.server
import json
import subprocess
import sys
import threading
import time

import httpx
import pytest

from agents.client import AgentClient, AuthError, Conflict, Decision
from tests.live import ROOT, wait_for

pytestmark = pytest.mark.daphne

WAIT = 15.0


def new_experiment(operator: httpx.Client, agents: int = 1, *, start: bool = True) -> tuple[str, list[dict]]:
    response = operator.post(
        "experiments",
        json={"name": "Client test", "agents": [{"agent_type": "claude_code"} for _ in range(agents)]},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    if start:
        assert operator.post(f"experiments/{body['id']}/start").status_code == 200
    return body["id"], body["runs"]


def client_for(server, run: dict, **options) -> AgentClient:
    options.setdefault("flush_interval", 0.2)
    return AgentClient(server.url, run["id"], run["token"], **options)


def run_status(operator: httpx.Client, run_id: str) -> str:
    return operator.get(f"agents/{run_id}").json()["status"]


def events_of(operator: httpx.Client, experiment_id: str) -> list[dict]:
    events, since = [], 0
    while True:
        page = operator.get("events", params={"experiment": experiment_id, "since": since, "page_size": 100}).json()
        events.extend(page["results"])
        if not page["next"]:
            return events
        since = events[-1]["seq"]


def decide_when_asked(server, run_id: str, *decisions: dict) -> threading.Thread:
    """An operator (in a thread, with a client of its own) who answers each plan the run
    submits with the next decision. Join it before the test ends."""

    def decide():
        with server.api("operator") as operator:
            for body in decisions:
                wait_for(lambda: run_status(operator, run_id) == "awaiting_approval", what="a plan")
                assert operator.post(f"agents/{run_id}/approve", json=body).status_code == 200

    thread = threading.Thread(target=decide)
    thread.start()
    return thread


@pytest.fixture
def server(shared_daphne_server):
    """The module's server; tests that restart theirs or change its config use
    ``daphne_server`` (their own) instead."""
    return shared_daphne_server


@pytest.fixture
def operator(server):
    with server.api("operator") as client:
        yield client


@pytest.fixture
def own_operator(daphne_server):
    with daphne_server.api("operator") as client:
        yield client


def test_an_agent_reports_everything_and_the_results_show_it(server, operator):
    experiment_id, [run] = new_experiment(operator)
    steps = 1200

    with client_for(server, run) as agent:
        agent.progress(5, "Reading the code", tokens_used=100, cost=0.01)
        for step in range(steps):
            agent.log_metrics({"loss": 1.0 / (step + 1), "accuracy": step / steps}, step=step)
            if step % 100 == 0:
                agent.log(f"step {step}")
        agent.log("an error happened", level="error")

        approver = decide_when_asked(server, run["id"], {"approved": True, "feedback": "Go"})
        decision = agent.submit_plan({"steps": ["refactor", "test"]})
        approver.join()
        assert decision == Decision("approved", "Go")

        agent.progress(90, "Testing", tokens_used=5000, cost=0.5)
        agent.validation(True, {"tests": 42})
        agent.complete({"pull_request": 17}, metrics={"tokens_used": 6000, "cost": 0.75})
        assert not agent.stopped

    results = operator.get(f"results/{experiment_id}").json()
    [row] = results["runs"]
    assert row["status"] == "completed"
    assert row["result"] == {"pull_request": 17}
    assert row["validation"]["passed"] is True
    assert row["metrics"]["tokens_used"] == 6000
    assert results["summary"]["total_cost"] == 0.75
    metrics = operator.get(f"metrics/{experiment_id}", params={"max_points": 100}).json()
    summary = metrics["summary"][run["id"]]
    assert summary["loss"]["count"] == steps
    assert summary["accuracy"]["count"] == steps
    assert summary["loss"]["max"] == 1.0
    assert summary["loss"]["last"] == 1.0 / steps
    assert len(metrics["series"][run["id"]]["loss"]) <= 100
    logs = operator.get(f"agents/{run['id']}/logs", params={"page_size": 100}).json()
    assert logs["count"] == steps // 100 + 1
    assert logs["results"][-1]["level"] == "error"
    types = [e["event_type"] for e in events_of(operator, experiment_id) if e["run_id"] == run["id"]]
    assert types.count("agent_initialized") == 1
    assert types.count("plan_approved") == 1
    assert types.count("agent_completed") == 1
    # Batched: 2,400 points in a few events, not one per point.
    assert 3 <= types.count("metrics_updated") <= 40


def test_a_stop_from_rest_reaches_the_agent_at_once(server, operator):
    experiment_id, [run] = new_experiment(operator)
    heard = threading.Event()
    reasons = []

    with client_for(server, run) as agent:
        agent.on_stop(lambda reason: (reasons.append(reason), heard.set()))
        agent.progress(10, "Working")
        wait_for(lambda: agent.socket_connected, what="the agent socket")

        stopped_at = time.monotonic()
        assert operator.post(f"agents/{run['id']}/stop").status_code == 200

        assert heard.wait(WAIT)
        assert time.monotonic() - stopped_at < 2.0
        assert agent.stopped
        assert reasons == ["operator"]
        # Later reports are dropped quietly instead of raising.
        assert agent.progress(20) is None
        agent.log_metrics({"loss": 1.0})
        assert agent.complete() is None

    assert run_status(operator, run["id"]) == "stopped"
    experiment = operator.get(f"experiments/{experiment_id}").json()
    assert experiment["status"] == "stopped"


def test_a_409_without_a_socket_raises_the_stop_signal(server, operator):
    _experiment_id, [run, _other] = new_experiment(operator, agents=2)

    with client_for(server, run, use_socket=False) as agent:
        agent.progress(10)
        operator.post(f"agents/{run['id']}/stop")

        assert agent.progress(20) is None
        assert agent.stopped
        assert agent.stop_reason == "operator"


def test_a_rejection_carries_its_feedback_and_stops_the_agent(server, operator):
    _experiment_id, [run] = new_experiment(operator)

    with client_for(server, run) as agent:
        operator_thread = decide_when_asked(server, run["id"], {"approved": False, "feedback": "Too risky"})

        decision = agent.submit_plan("delete the database")
        operator_thread.join()

        assert decision == Decision("rejected", "Too risky")
        assert agent.wait_stopped(WAIT)
        assert agent.stop_reason == "plan_rejected"


def test_a_revision_request_lets_the_agent_submit_again(server, operator):
    _experiment_id, [run] = new_experiment(operator)
    with client_for(server, run) as agent:
        operator_thread = decide_when_asked(
            server, run["id"], {"approved": False, "revise": True, "feedback": "Add tests"}, {"approved": True}
        )

        first = agent.submit_plan({"steps": ["refactor"]})
        second = agent.submit_plan({"steps": ["add tests", "refactor"]})
        operator_thread.join()

        assert first.revise and first.feedback == "Add tests"
        assert second.approved
        assert not agent.stopped
        agent.complete()


def test_decisions_are_found_by_polling_when_there_is_no_socket(server, operator):
    _experiment_id, [run] = new_experiment(operator)

    with client_for(server, run, use_socket=False, poll_interval=0.2) as agent:
        operator_thread = decide_when_asked(server, run["id"], {"approved": True, "feedback": "fine"})

        assert agent.submit_plan("p") == Decision("approved", "fine")
        operator_thread.join()


def test_the_approval_timeout_fires_in_daphne_alone_and_tells_the_agent(daphne_server, own_operator):
    with daphne_server.api("root") as staff:
        assert staff.post("config", json={"approval_timeout_seconds": 5}).status_code == 200
    _experiment_id, [run] = new_experiment(own_operator)

    with client_for(daphne_server, run) as agent:
        started = time.monotonic()
        decision = agent.submit_plan("nobody will answer")
        waited = time.monotonic() - started

    assert decision.state == "timed_out"
    assert agent.stop_reason == "approval_timeout"
    assert 4.5 <= waited <= 5 + 6  # the sweep runs every 0.5 s; the machine may be busy
    body = own_operator.get(f"agents/{run['id']}").json()
    assert body["status"] == "failed"
    assert "approval_timeout" in body["error"]


def test_the_approval_timeout_survives_a_restart(daphne_server, own_operator):
    """The deadline passes while no server runs; the next daphne fails the run on its own
    (before anyone asks) and the reconnecting agent hears it."""
    experiment_id, [run] = new_experiment(own_operator)
    # No REST polling: a read of an overdue run would time it out itself.
    agent = client_for(daphne_server, run, max_backoff=0.5, poll_interval=600)
    results: list = []
    try:
        agent.progress(1)
        waiting = threading.Thread(target=lambda: results.append(agent.submit_plan("p")))
        waiting.start()
        wait_for(lambda: run_status(own_operator, run["id"]) == "awaiting_approval")

        daphne_server.stop()
        daphne_server.sql(
            "UPDATE agents_agentrun SET approval_deadline = datetime('now', '-1 second') WHERE public_id = ?",
            (run["id"],),
        )
        daphne_server.start()
        # Nobody reads the run: only the new process's own sweep can fail it.
        wait_for(
            lambda: (
                daphne_server.sql("SELECT status FROM agents_agentrun WHERE public_id = ?", (run["id"],))
                == [("failed",)]
            ),
            what="the sweep of the restarted server",
        )
        waiting.join(WAIT)
        assert results == [Decision("timed_out")]
    finally:
        agent.close()
    failed = [e for e in events_of(own_operator, experiment_id) if e["event_type"] == "agent_failed"]
    assert len(failed) == 1
    assert failed[0]["data"]["reason"] == "approval_timeout"


class _LosingProxy(http.server.ThreadingHTTPServer):
    """Forwards requests to the server, but loses the answer to the first try of every
    report: the server has stored it, the client sees the connection drop."""

    daemon_threads = True

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.seen_keys: dict[str, int] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _LosingHandler)


class _LosingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        try:
            self._relay()
        except (OSError, httpx.TransportError):
            self.close_connection = True  # the client went away first: nothing to do

    def _relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        response = httpx.request(
            self.command, self.server.upstream + self.path, headers=headers, content=body, timeout=30
        )
        key = self.headers.get("Idempotency-Key")
        if key:
            with self.server.lock:
                self.server.seen_keys[key] = self.server.seen_keys.get(key, 0) + 1
                first = self.server.seen_keys[key] == 1
            if first:
                self.close_connection = True
                return  # the answer is lost
        self.send_response(response.status_code)
        for name in ("Content-Type", "Retry-After"):
            if name in response.headers:
                self.send_header(name, response.headers[name])
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = _forward
    do_POST = _forward


def test_retries_reuse_the_idempotency_key_so_nothing_is_counted_twice(server, operator):
    experiment_id, [run] = new_experiment(operator)
    proxy = _LosingProxy(server.url)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}"
        with AgentClient(url, run["id"], run["token"], use_socket=False, backoff=0.05, flush_interval=0.1) as agent:
            agent.progress(10, "Working")
            for step in range(1500):
                agent.log_metrics({"loss": float(step)}, step=step)
            agent.log("once")
            agent.complete({"ok": True})
    finally:
        proxy.shutdown()

    assert proxy.seen_keys and all(count == 2 for count in proxy.seen_keys.values())
    summary = operator.get(f"metrics/{experiment_id}").json()["summary"][run["id"]]
    assert summary["loss"]["count"] == 1500
    assert operator.get(f"agents/{run['id']}/logs").json()["count"] == 1
    types = [e["event_type"] for e in events_of(operator, experiment_id) if e["run_id"] == run["id"]]
    assert types.count("agent_progress") == 1
    assert types.count("metrics_updated") == 2  # 1,500 points: two batches, each stored once
    assert types.count("log_appended") == 1
    assert types.count("agent_completed") == 1


def test_a_reissued_token_stops_the_old_agent(server, operator):
    _experiment_id, [run] = new_experiment(operator)

    with client_for(server, run) as agent:
        agent.progress(10)
        operator.post(f"agents/{run['id']}/token")

        with pytest.raises(AuthError):
            agent.progress(20)
        assert agent.stopped
        assert agent.stop_reason == "unauthorized"


def test_an_exception_in_the_agent_fails_the_run(server, operator):
    _experiment_id, [run] = new_experiment(operator)

    with pytest.raises(RuntimeError), client_for(server, run) as agent:
        agent.progress(10)
        raise RuntimeError("the model fell over")

    body = operator.get(f"agents/{run['id']}").json()
    assert body["status"] == "failed"
    assert body["error"] == "RuntimeError: the model fell over"


def test_the_client_imports_without_django():
    code = (
        "import sys, agents.client, agents.client.http, agents.client.control, agents.client.batching\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'rest_framework')))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_client_is_configured_from_the_environment(monkeypatch):
    monkeypatch.setenv("RESEARCH_ENGINE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("RESEARCH_RUN_ID", "run_abc")
    monkeypatch.setenv("RESEARCH_RUN_TOKEN", "rt_secret")

    client = AgentClient(use_socket=False)
    try:
        assert (client.url, client.run_id) == ("http://127.0.0.1:9", "run_abc")
        assert "rt_secret" not in repr(vars(client))
    finally:
        client.close(timeout=0)

    monkeypatch.delenv("RESEARCH_RUN_TOKEN")
    with pytest.raises(ValueError, match="RESEARCH_RUN_TOKEN"):
        AgentClient(use_socket=False)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("progress", (150,)),
        ("progress", (float("nan"),)),
        ("log_metrics", ({"loss": float("inf")},)),
        ("log_metrics", ({"loss": "high"},)),
        ("log", ("x", "loud")),
    ],
)
def test_bad_values_are_refused_at_the_call(call, args):
    client = AgentClient("http://127.0.0.1:9", "run_x", "rt_x", use_socket=False)
    try:
        with pytest.raises(ValueError):
            getattr(client, call)(*args)
    finally:
        client.close(timeout=0)


def example_agent_source() -> str:
    text = (ROOT / "docs" / "agent-client.md").read_text()
    section = text.split("## A complete example agent", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_example_agent_in_the_docs_runs_to_completion(server, operator, tmp_path):
    experiment_id, [run] = new_experiment(operator)
    script = tmp_path / "example_agent.py"
    script.write_text(example_agent_source())
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "RESEARCH_ENGINE_URL": server.url,
        "RESEARCH_RUN_ID": run["id"],
        "RESEARCH_RUN_TOKEN": run["token"],
    }
    agent = subprocess.Popen([sys.executable, str(script)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        for decision in ({"approved": False, "revise": True, "feedback": "Add a rollback plan"}, {"approved": True}):
            wait_for(lambda: run_status(operator, run["id"]) == "awaiting_approval", what="the example's plan")
            assert operator.post(f"agents/{run['id']}/approve", json=decision).status_code == 200
        _out, err = agent.communicate(timeout=60)
    finally:
        agent.kill()

    assert agent.returncode == 0, err
    body = operator.get(f"agents/{run['id']}").json()
    assert body["status"] == "completed"
    assert body["result"]["pull_request"] == 17
    assert body["plan"]["steps"][0] == "Address: Add a rollback plan"
    assert body["validation"]["passed"] is True
    summary = operator.get(f"metrics/{experiment_id}").json()["summary"][run["id"]]
    assert summary["loss"]["count"] == 50


def test_an_agent_started_before_its_experiment_keeps_its_points_until_the_start(server, operator):
    experiment_id, [run] = new_experiment(operator, start=False)

    with client_for(server, run, use_socket=False) as agent:
        with pytest.raises(Conflict):
            agent.progress(1)
        assert not agent.stopped
        agent.log_metrics({"loss": 1.0}, step=0)
        assert not agent.flush(timeout=0.5)  # refused for now, still queued

        assert operator.post(f"experiments/{experiment_id}/start").status_code == 200

        assert agent.flush(timeout=WAIT)
        agent.complete()
    assert operator.get(f"metrics/{experiment_id}").json()["summary"][run["id"]]["loss"]["count"] == 1


@pytest.mark.parametrize("megabytes", [1.5, 3, 10])
def test_oversized_reports_are_413_through_daphne_and_store_nothing(server, operator, megabytes):
    _experiment_id, [run] = new_experiment(operator)
    message = "x" * 60_000
    count = int(megabytes * 1024 * 1024 / len(message)) + 1
    body = json.dumps({"lines": [{"level": "info", "message": message} for _ in range(count)]})

    try:
        response = httpx.post(
            f"{server.url}/api/research/agents/{run['id']}/logs",
            content=body,
            headers={"Authorization": f"Bearer {run['token']}", "Content-Type": "application/json"},
            timeout=30,
        )
    except (httpx.WriteError, httpx.RemoteProtocolError):
        response = None  # refused before the client finished sending: fine, as long as nothing is stored
    if response is not None:
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
    assert operator.get(f"agents/{run['id']}/logs").json()["count"] == 0
    assert run_status(operator, run["id"]) == "starting"
