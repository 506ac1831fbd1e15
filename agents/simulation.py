"""Simulated agents: scripted coding agents that report through the public API.

Each ``SimulatedAgent`` drives one run with the agent client (``agents.client``) exactly as
a real agent process would: progress with tokens and cost, metric series (loss, accuracy,
reward), log lines, a plan that waits for an operator's decision, validation and a result,
and now and then a failure. Nothing here touches Django: a simulation exercises the same
road (REST, the agent socket, events, the dashboard) as the real thing.
``manage.py simulate_experiment`` runs a crowd of them.
"""

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.client import AgentClient, ClientError, Decision

logger = logging.getLogger("research_engine.simulation")

# Dollars per 1,000 tokens, roughly, per kind of agent (cost is tokens × price).
PRICES = {"claude_code": 0.015, "codex": 0.012, "aider": 0.010, "swe_agent": 0.011}
DEFAULT_PRICE = 0.012
TICK_SECONDS = 0.5

TASKS = [
    "Reading the repository layout",
    "Tracing the invoicing code paths",
    "Writing failing tests for the new module",
    "Extracting the invoicing module",
    "Updating call sites",
    "Fixing type errors",
    "Running the test suite",
    "Fixing a flaky test",
    "Refactoring the tax calculation",
    "Updating the documentation",
]
FAILURES = [
    "Out of memory while indexing the repository",
    "Test suite timed out after 900 s",
    "Model API returned 529 (overloaded) five times in a row",
    "Merge conflict in billing/models.py could not be resolved",
    "Sandbox lost its network connection",
]
LOG_LINES = [
    ("info", "Opened {n} files"),
    ("info", "Ran pytest: {n} passed"),
    ("debug", "Prompt used {n} tokens"),
    ("warning", "Retrying the model call after a timeout ({n} ms)"),
    ("info", "Applied a patch touching {n} lines"),
    ("error", "Test test_invoice_total failed ({n} assertions)"),
]


@dataclass
class Script:
    """What one simulated agent will do, drawn up front from its random generator."""

    ticks: int
    plan_at: int | None
    fail_at: int | None
    validation_passes: bool

    @classmethod
    def draw(cls, rng: random.Random, *, wants_plan: bool, fail_rate: float) -> "Script":
        # At speed 1 a tick is half a second: a run takes one to two minutes to watch.
        ticks = rng.randint(120, 240)
        return cls(
            ticks=ticks,
            plan_at=rng.randint(6, 15) if wants_plan else None,
            fail_at=rng.randint(ticks // 3, ticks - 2) if rng.random() < fail_rate else None,
            validation_passes=rng.random() < 0.9,
        )


@dataclass
class AgentState:
    """What the crowd's progress bar shows about one agent."""

    name: str
    status: str = "starting"  # starting, running, awaiting_approval, completed, failed, stopped
    progress: float = 0.0
    error: str | None = None


@dataclass
class SimulatedAgent:
    client: AgentClient
    name: str
    agent_type: str
    rng: random.Random
    speed: float = 1.0
    fail_rate: float = 0.1
    wants_plan: bool = False
    state: AgentState = field(init=False)

    def __post_init__(self):
        self.state = AgentState(self.name)
        self.price = PRICES.get(self.agent_type, DEFAULT_PRICE) * self.rng.uniform(0.8, 1.2)
        self.tokens = 0
        self.loss = self.rng.uniform(2.0, 3.0)

    def sleep(self, ticks: float = 1.0) -> bool:
        """Wait a tick (or until stopped); False once the run is stopped."""
        return not self.client.wait_stopped(TICK_SECONDS * ticks / self.speed)

    def run(self) -> AgentState:
        try:
            self._live()
        except ClientError as exc:
            logger.warning("%s: %s", self.name, exc)
            self.state.status, self.state.error = "failed", str(exc)
        if self.client.stopped and self.state.status not in ("completed", "failed"):
            self.state.status = "failed" if self.client.stop_reason == "approval_timeout" else "stopped"
        return self.state

    def _live(self) -> None:
        script = Script.draw(self.rng, wants_plan=self.wants_plan, fail_rate=self.fail_rate)
        self.state.status = "running"
        task = TASKS[0]
        for tick in range(script.ticks):
            if self.client.stopped:
                return
            percent = min(99.0, 100.0 * tick / script.ticks)
            if tick % 8 == 0:
                task = self.rng.choice(TASKS)
            self._work(tick, percent, task)
            if tick == script.plan_at and not self._plan():
                return
            if tick == script.fail_at:
                error = self.rng.choice(FAILURES)
                self.client.log(error, level="critical")
                self.client.fail(error)
                self.state.status, self.state.error = "failed", error
                return
            if not self.sleep():
                return
        self.client.validation(script.validation_passes, {"tests_run": self.rng.randint(80, 400)})
        result = {
            "summary": "Extracted the invoicing module; all call sites updated.",
            "files_changed": self.rng.randint(5, 40),
            "tests_passed": script.validation_passes,
        }
        if self.client.complete(result, metrics=self._run_metrics()) is not None:
            self.state.status, self.state.progress = "completed", 100.0

    def _work(self, step: int, percent: float, task: str) -> None:
        self.tokens += self.rng.randint(300, 2500)
        self.loss = max(0.05, self.loss * self.rng.uniform(0.93, 1.01))
        accuracy = 1.0 - math.exp(-step / 25) * self.rng.uniform(0.9, 1.0)
        self.client.log_metrics(
            {
                "loss": round(self.loss, 5),
                "accuracy": round(min(1.0, accuracy), 5),
                "reward": round(self.rng.gauss(step / 10, 1.0), 5),
                "tokens_per_step": float(self.tokens / (step + 1)),
            },
            step=step,
        )
        if self.rng.random() < 0.35:
            level, text = self.rng.choice(LOG_LINES)
            self.client.log(text.format(n=self.rng.randint(1, 500)), level=level)
        # Progress every other second or so (metric points are batched, progress is not).
        if step % 4 == 0:
            self.client.progress(percent, task, tokens_used=self.tokens, cost=round(self.tokens / 1000 * self.price, 4))
        self.state.progress = percent

    def _run_metrics(self) -> dict:
        return {
            "tokens_used": self.tokens,
            "cost": round(self.tokens / 1000 * self.price, 4),
            "elapsed_time": round(self.client.elapsed(), 3),
        }

    def _plan(self) -> bool:
        """Submit a plan and wait; revise once when asked. False when the run is over."""
        plan = {
            "summary": "Extract the invoicing module from billing/ into its own package",
            "steps": [
                "Write characterisation tests for invoice totals",
                "Move billing/invoicing.py to invoicing/ and re-export",
                "Update the 14 call sites",
                "Delete the compatibility shim",
            ],
            "estimated_tokens": self.rng.randint(40_000, 120_000),
        }
        for _attempt in range(3):
            self.state.status = "awaiting_approval"
            self.client.log("Plan submitted; waiting for approval")
            decision: Decision = self.client.submit_plan(plan)
            self.state.status = "running"
            if decision.approved:
                self.client.log(f"Plan approved{': ' + decision.feedback if decision.feedback else ''}")
                return True
            if not decision.revise:
                return False
            self.client.log(f"Revising the plan: {decision.feedback or 'no feedback given'}")
            plan = {**plan, "steps": [*plan["steps"], f"Address review: {decision.feedback or 'revise'}"]}
            if not self.sleep(2):
                return False
        return False


@dataclass(frozen=True)
class RunAccess:
    """What an agent needs to report on a run."""

    run_id: str
    token: str
    name: str
    agent_type: str


class Crowd:
    """Runs simulated agents in threads; ``states`` shows how each is doing."""

    def __init__(
        self,
        url: str,
        runs: list[RunAccess],
        *,
        speed: float = 1.0,
        seed: int | None = None,
        fail_rate: float = 0.1,
        plan_rate: float = 0.5,
        client_options: dict | None = None,
    ):
        master = random.Random(seed)
        self.agents: list[SimulatedAgent] = []
        for index, run in enumerate(runs):
            client = AgentClient(url, run.run_id, run.token, **(client_options or {}))
            rng = random.Random(master.getrandbits(64))
            self.agents.append(
                SimulatedAgent(
                    client=client,
                    name=run.name or run.run_id,
                    agent_type=run.agent_type,
                    rng=rng,
                    speed=speed,
                    fail_rate=fail_rate,
                    # The first agent always asks for approval (unless no plans are wanted at
                    # all), so a demo always shows a plan.
                    wants_plan=plan_rate > 0 and (index == 0 or rng.random() < plan_rate),
                )
            )
        self.threads: list[threading.Thread] = []

    @property
    def states(self) -> list[AgentState]:
        return [agent.state for agent in self.agents]

    def start(self) -> None:
        for agent in self.agents:
            thread = threading.Thread(target=self._run_one, args=(agent,), name=f"sim-{agent.name}", daemon=True)
            self.threads.append(thread)
            thread.start()

    @staticmethod
    def _run_one(agent: SimulatedAgent) -> None:
        try:
            agent.run()
        except Exception as exc:  # a simulated agent must never take the crowd down
            logger.exception("%s crashed", agent.name)
            agent.state.status, agent.state.error = "failed", repr(exc)
        finally:
            agent.client.close(timeout=10)

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def wait(self, timeout: float | None = None, on_tick: Callable[[], None] | None = None) -> bool:
        """Wait for every agent to finish, calling ``on_tick`` about every 0.2 s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.alive():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            for thread in self.threads:
                thread.join(0.2 / max(1, len(self.threads)))
            if on_tick is not None:
                on_tick()
        if on_tick is not None:
            on_tick()
        return True

    def abandon(self) -> None:
        """Stop reporting (Ctrl-C): the agents close their clients and end."""
        for agent in self.agents:
            agent.client.interrupt("interrupted")
