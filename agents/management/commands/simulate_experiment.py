"""``manage.py simulate_experiment``: a crowd of simulated agents on a running server.

Everything goes through the public API, as a real operator and real agents would: the
command signs in (``--username/--password`` or ``--token``), creates and starts an
experiment (or takes ``--experiment`` and re-issues its runs' tokens, which are shown only
once), then runs one simulated agent per run (``agents/simulation.py``, built on the agent
client) until each completes, fails, or is stopped, with a progress bar. Ctrl-C stops the
runs it was simulating.

    manage.py simulate_experiment --url http://127.0.0.1:8000 --username demo --password … \\
        --agents 6 --speed 2 --seed 7 --fail-rate 0.2
"""

import signal
import threading
from collections import Counter

import httpx
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from agents.simulation import Crowd, RunAccess

AGENT_TYPES = ["claude_code", "codex", "aider", "swe_agent"]
UNFINISHED = ("pending", "starting", "running", "awaiting_approval")


class Operator:
    """The signed-in user, over REST."""

    def __init__(self, url: str, token: str):
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/research/", headers={"Authorization": f"Token {token}"}, timeout=30
        )

    @classmethod
    def sign_in(cls, url: str, username: str, password: str) -> "Operator":
        response = httpx.post(
            url.rstrip("/") + "/api/research/auth/token", json={"username": username, "password": password}, timeout=30
        )
        if response.status_code != 200:
            raise CommandError(f"Could not sign in as {username}: {response.status_code} {response.text[:200]}")
        return cls(url, response.json()["token"])

    def call(self, method: str, path: str, *, expect=(200,), **kwargs) -> dict:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CommandError(f"{method} {path}: the server does not answer ({exc})") from exc
        if response.status_code not in expect:
            raise CommandError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}


class Command(BaseCommand):
    help = "Run simulated agents against a running Research Engine, through its public API."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The server (default %(default)s).")
        parser.add_argument("--username", help="Sign in with a username and --password …")
        parser.add_argument("--password")
        parser.add_argument("--token", help="… or with an API token.")
        parser.add_argument("--experiment", help="Simulate the unfinished runs of this experiment (exp_…).")
        parser.add_argument("--name", default="Simulated experiment", help="Name of a new experiment.")
        parser.add_argument("--agents", type=int, default=4, help="Runs of a new experiment (default 4).")
        parser.add_argument("--speed", type=float, default=1.0, help="Time runs this many times faster.")
        parser.add_argument("--seed", type=int, default=None, help="Make the simulation repeatable.")
        parser.add_argument("--fail-rate", type=float, default=0.1, help="Chance that an agent fails (0-1).")
        parser.add_argument("--plan-rate", type=float, default=0.5, help="Chance that an agent submits a plan.")
        parser.add_argument(
            "--auto-approve",
            action="store_true",
            help="Approve every plan as the signed-in user (default: wait for an operator).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options):
        if options["agents"] < 1:
            raise CommandError("--agents must be at least 1.")
        if not 0 <= options["fail_rate"] <= 1 or not 0 <= options["plan_rate"] <= 1:
            raise CommandError("--fail-rate and --plan-rate are between 0 and 1.")
        if options["speed"] <= 0:
            raise CommandError("--speed must be positive.")
        url = options["url"].rstrip("/")
        operator = self._operator(url, options)
        experiment_id, runs = self._runs(operator, options)
        self.stdout.write(f"Simulating {len(runs)} agent(s) on {experiment_id} at {url}")
        crowd = Crowd(
            url,
            runs,
            speed=options["speed"],
            seed=options["seed"],
            fail_rate=options["fail_rate"],
            plan_rate=options["plan_rate"],
        )
        interrupted = threading.Event()
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                handlers[number] = signal.signal(number, lambda *_: interrupted.set())
        bar = tqdm(
            total=100,
            desc=experiment_id,
            disable=options["no_progress"],
            dynamic_ncols=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
        )
        approved: set[str] = set()
        try:
            crowd.start()

            def tick():
                if interrupted.is_set():
                    raise KeyboardInterrupt
                # Overall completion: a finished agent (whatever its end) counts as 100 %.
                finished = ("completed", "failed", "stopped")
                states = crowd.states
                bar.n = round(sum(100.0 if s.status in finished else s.progress for s in states) / len(states), 1)
                counts = Counter(s.status for s in crowd.states)
                bar.set_postfix({k: v for k, v in sorted(counts.items())}, refresh=False)
                bar.refresh()
                if options["auto_approve"]:
                    self._approve_waiting(operator, crowd, runs, approved)

            crowd.wait(on_tick=tick)
        except KeyboardInterrupt:
            bar.write("Interrupted: stopping the simulated runs…")
            self._stop_runs(operator, runs)
            crowd.abandon()
            crowd.wait(timeout=15)
        finally:
            bar.close()
            for number, handler in handlers.items():
                signal.signal(number, handler)
        counts = Counter(s.status for s in crowd.states)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        self.stdout.write(self.style.SUCCESS(f"Done: {summary}."))

    def _operator(self, url: str, options) -> Operator:
        if options["token"]:
            return Operator(url, options["token"])
        if options["username"] and options["password"]:
            return Operator.sign_in(url, options["username"], options["password"])
        raise CommandError("Sign in with --username and --password, or pass --token.")

    def _runs(self, operator: Operator, options) -> tuple[str, list[RunAccess]]:
        if options["experiment"]:
            return self._existing(operator, options["experiment"])
        agents = [
            {"agent_type": AGENT_TYPES[i % len(AGENT_TYPES)], "name": f"agent-{i + 1}"}
            for i in range(options["agents"])
        ]
        body = operator.call(
            "POST",
            "experiments",
            expect=(201,),
            json={"name": options["name"], "description": "Made by simulate_experiment.", "agents": agents},
        )
        operator.call("POST", f"experiments/{body['id']}/start")
        runs = [RunAccess(r["id"], r["token"], r["name"], r["agent_type"]) for r in body["runs"]]
        return body["id"], runs

    def _existing(self, operator: Operator, experiment_id: str) -> tuple[str, list[RunAccess]]:
        experiment = operator.call("GET", f"experiments/{experiment_id}")
        if experiment["status"] == "created":
            operator.call("POST", f"experiments/{experiment_id}/start")
        elif experiment["status"] != "running":
            raise CommandError(f"{experiment_id} is {experiment['status']}; there is nothing to simulate.")
        runs = []
        page = operator.call("GET", "agents", params={"experiment": experiment_id, "page_size": 100})
        while True:
            for run in page["results"]:
                if run["status"] in UNFINISHED:
                    # Tokens are shown once, when a run is made: take a new one for this agent.
                    token = operator.call("POST", f"agents/{run['id']}/token")["token"]
                    runs.append(RunAccess(run["id"], token, run["name"], run["agent_type"]))
            if not page["next"]:
                break
            page = operator.call("GET", page["next"])
        if not runs:
            raise CommandError(f"{experiment_id} has no unfinished runs.")
        return experiment_id, runs

    @staticmethod
    def _approve_waiting(operator: Operator, crowd: Crowd, runs: list[RunAccess], approved: set) -> None:
        for run, state in zip(runs, crowd.states, strict=True):
            if state.status == "awaiting_approval" and run.run_id not in approved:
                response = operator.http.post(f"agents/{run.run_id}/approve", json={"approved": True})
                if response.status_code == 200:
                    approved.add(run.run_id)

    @staticmethod
    def _stop_runs(operator: Operator, runs: list[RunAccess]) -> None:
        ids = [run.run_id for run in runs]
        for start in range(0, len(ids), 100):
            try:
                operator.http.post("agents/bulk", json={"action": "stop", "run_ids": ids[start : start + 100]})
            except httpx.TransportError:
                return  # the server is going away too
