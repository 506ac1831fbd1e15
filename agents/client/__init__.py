"""The Research Engine agent client: what an agent process imports to report on its run.

It needs only ``httpx`` and ``websockets`` (no Django), and is configured from the
environment the engine gives each agent, or from arguments::

    RESEARCH_ENGINE_URL=http://127.0.0.1:8000
    RESEARCH_RUN_ID=run_…
    RESEARCH_RUN_TOKEN=rt_…

    from agents.client import AgentClient

    with AgentClient() as client:
        client.progress(10, "Reading the code", tokens_used=1200, cost=0.02)
        client.log_metrics({"loss": 0.42, "accuracy": 0.81}, step=1)   # batched
        client.log("Found 3 failing tests")                             # batched
        decision = client.submit_plan({"steps": [...]})                 # waits
        if decision.approved:
            ...
        client.complete(result={"pull_request": 17})

Metric points and log lines go out in batches from a background thread; every other
report is sent at once. Each report keeps one ``Idempotency-Key`` across its retries
(exponential backoff), so nothing is ever counted twice. The run's socket delivers
``stop`` and plan decisions the moment they are made; when it is down, the client polls
the run over REST instead. docs/agent-client.md is the guide.
"""

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from agents.client.batching import Batcher
from agents.client.control import ControlListener, socket_url
from agents.client.http import Api, AuthError, ClientError, Conflict, RetryPolicy, Unreachable

__all__ = [
    "AgentClient",
    "AuthError",
    "ClientError",
    "Conflict",
    "Decision",
    "Unreachable",
]

logger = logging.getLogger("research_engine.client")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_MESSAGE_BYTES = 64 * 1024
TERMINAL_STATUSES = ("completed", "failed", "stopped")
TRUNCATED = " …[truncated]"


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z"


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _clip_message(message: str) -> str:
    encoded = message.encode("utf-8", "replace")
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return message
    room = MAX_MESSAGE_BYTES - len(TRUNCATED.encode())
    return encoded[:room].decode("utf-8", "ignore") + TRUNCATED


@dataclass(frozen=True)
class Decision:
    """What became of a plan.

    ``state``: ``approved``; ``revise`` (rejected, with feedback for a new plan: the run
    goes on); ``rejected`` (the run is stopped); ``timed_out`` (nobody decided in time:
    the run failed); ``stopped`` (the run ended some other way while waiting).
    """

    state: str
    feedback: str | None = None

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    @property
    def revise(self) -> bool:
        return self.state == "revise"


def _decision_from_approval(approval: Mapping | None) -> Decision | None:
    state = (approval or {}).get("state")
    feedback = (approval or {}).get("feedback")
    return {
        "approved": Decision("approved", feedback),
        "revision_requested": Decision("revise", feedback),
        "rejected": Decision("rejected", feedback),
        "timed_out": Decision("timed_out"),
    }.get(state)


class AgentClient:
    """Reports on one run. Thread-safe; use it as a context manager or call ``close()``.

    Arguments default to the environment: ``url`` to ``RESEARCH_ENGINE_URL``, ``run_id``
    to ``RESEARCH_RUN_ID``, ``token`` to ``RESEARCH_RUN_TOKEN``.
    """

    def __init__(
        self,
        url: str | None = None,
        run_id: str | None = None,
        token: str | None = None,
        *,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        retries: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        use_socket: bool = True,
        poll_interval: float = 2.0,
    ):
        self.url = (url or os.environ.get("RESEARCH_ENGINE_URL") or "").rstrip("/")
        self.run_id = run_id or os.environ.get("RESEARCH_RUN_ID") or ""
        token = token or os.environ.get("RESEARCH_RUN_TOKEN") or ""
        missing = [
            name
            for name, value in (
                ("url (RESEARCH_ENGINE_URL)", self.url),
                ("run_id (RESEARCH_RUN_ID)", self.run_id),
                ("token (RESEARCH_RUN_TOKEN)", token),
            )
            if not value
        ]
        if missing:
            raise ValueError("AgentClient needs " + ", ".join(missing))
        self.poll_interval = poll_interval
        self._started = time.monotonic()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._interrupted = threading.Event()
        self._stop_callbacks: list[Callable[[str], None]] = []
        self.stop_reason: str | None = None
        self.finished = False  # the agent itself completed or failed the run
        self.run: dict | None = None  # the run as last seen (snapshot, answers, polls)
        self._control_decision: Decision | None = None
        self._round_decisions: dict[str, Decision] = {}
        self._closed = False

        retry = RetryPolicy(attempts=retries, backoff=backoff, max_backoff=max_backoff)

        def api() -> Api:
            return Api(self.url, self.run_id, token, timeout=timeout, retry=retry, interrupted=self._interrupted)

        self._api = api()
        self._api_lock = threading.Lock()
        self._batcher = Batcher(
            api, flush_interval=flush_interval, on_conflict=self._on_conflict, on_auth_error=self._on_auth_error
        )
        self._listener = (
            ControlListener(
                socket_url(self.url, self.run_id),
                token,
                on_message=self._on_socket_message,
                on_unauthorized=lambda: self._set_stopped("unauthorized"),
                open_timeout=timeout,
                max_backoff=max_backoff,
            )
            if use_socket
            else None
        )

    # The stop signal ---------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        """True once the agent should stop: an operator stopped the run, a plan was
        rejected or timed out, the token was revoked, or the run is otherwise over."""
        return self._stop.is_set()

    def on_stop(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once when the stop signal comes (at once if it has)."""
        with self._lock:
            if not self._stop.is_set():
                self._stop_callbacks.append(callback)
                return
            reason = self.stop_reason
        callback(reason)

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Sleep until the stop signal (True) or for ``timeout`` seconds (False)."""
        return self._stop.wait(timeout)

    def interrupt(self, reason: str = "interrupted") -> None:
        """Raise the stop signal from the agent's own side (a signal handler, say); the
        server is not told: the run stays as it is until an operator or a report ends it."""
        self._set_stopped(reason)

    @property
    def socket_connected(self) -> bool:
        return self._listener is not None and self._listener.connected.is_set()

    def _set_stopped(self, reason: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self.stop_reason = reason
            self._stop.set()
            callbacks, self._stop_callbacks = self._stop_callbacks, []
            self._changed.notify_all()
        self._batcher.drop()
        logger.info("run %s: stop (%s)", self.run_id, reason)
        for callback in callbacks:
            try:
                callback(reason)
            except Exception:
                logger.exception("an on_stop callback failed")

    # Reports -----------------------------------------------------------------------------

    def progress(
        self,
        percent: float,
        current_action: str | None = None,
        *,
        tokens_used: int | None = None,
        cost: float | None = None,
        elapsed_time: float | None = None,
        metrics: Mapping | None = None,
    ) -> dict | None:
        """Report progress (0-100) at once; ``elapsed_time`` defaults to the client's age."""
        body: dict = {"progress_percent": _finite("percent", percent)}
        if not 0 <= body["progress_percent"] <= 100:
            raise ValueError(f"percent must be between 0 and 100, not {percent!r}")
        if current_action is not None:
            body["current_action"] = str(current_action)[:1000]
        run_metrics = dict(metrics or {})
        if tokens_used is not None:
            run_metrics["tokens_used"] = int(tokens_used)
        if cost is not None:
            run_metrics["cost"] = _finite("cost", cost)
        if elapsed_time is not None:
            run_metrics["elapsed_time"] = round(_finite("elapsed_time", elapsed_time), 3)
        elif "elapsed_time" not in run_metrics:
            run_metrics["elapsed_time"] = round(self.elapsed(), 3)
        body["metrics"] = run_metrics
        return self._report("progress", body)

    def log_metrics(self, values: Mapping[str, float], step: int | None = None, *, timestamp: str | None = None):
        """Queue one point per metric (sent in batches); ``step`` is shared by them all."""
        stamp = timestamp or _now()
        points = []
        for name, value in values.items():
            point = {"name": str(name), "value": _finite(f"metric {name!r}", value), "timestamp": stamp}
            if step is not None:
                point["step"] = int(step)
            points.append(point)
        if points and not self._inactive():
            self._batcher.add("metrics", points)

    def log(self, message: str, level: str = "info") -> None:
        """Queue a log line (sent in batches); messages over 64 KiB are cut."""
        level = level.lower()
        if level == "warn":
            level = "warning"
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        if not self._inactive():
            line = {"level": level, "message": _clip_message(str(message)), "timestamp": _now()}
            self._batcher.add("logs", [line])

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Send every queued point and line now; True when all were answered in time."""
        return self._batcher.flush(timeout)

    def submit_plan(self, plan, *, timeout: float | None = None) -> Decision:
        """Submit a plan and wait for the operator's decision (or the server's timeout).

        ``timeout`` bounds the wait on this side (``TimeoutError``); the server fails the
        run itself when nobody decides within its approval timeout (``timed_out``).
        """
        if self._inactive():
            return Decision("stopped")
        self.flush()
        with self._lock:
            self._control_decision = None
        run = self._report("plan", {"plan": plan})
        if run is None:
            return self._decision_after_stop()
        round_key = (run.get("approval") or {}).get("requested_at")
        return self._wait_for_decision(round_key, timeout)

    def validation(self, passed: bool, details=None) -> dict | None:
        self.flush()
        return self._report("validation", {"passed": bool(passed), "details": details})

    def complete(self, result=None, *, metrics: Mapping | None = None) -> dict | None:
        """Flush, then finish the run as completed with its result."""
        self.flush()
        body: dict = {"result": result}
        if metrics:
            body["metrics"] = dict(metrics)
        return self._finish("complete", body)

    def fail(self, error: str) -> dict | None:
        """Flush, then finish the run as failed with ``error``."""
        self.flush()
        return self._finish("fail", {"error": str(error)[:10_000] or "failed"})

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def read_run(self) -> dict:
        """The run as the server shows it now (``GET agents/{run_id}``)."""
        with self._api_lock:
            run = self._api.read_run()
        self._apply_run(run)
        return run

    # Closing -----------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued (up to ``timeout`` seconds), then stop the threads."""
        if self._closed:
            return
        self._closed = True
        if not self.flush(timeout):
            logger.warning("closing with %d points and lines not sent", self._batcher.buffered)
        self._interrupted.set()
        self._batcher.close(timeout=5)
        if self._listener is not None:
            self._listener.close()
        self._api.close()

    def __enter__(self) -> "AgentClient":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc is not None and not self._inactive() and not isinstance(exc, KeyboardInterrupt):
                try:
                    self.fail(f"{exc_type.__name__}: {exc}")
                except ClientError:
                    logger.exception("could not report the failure")
        finally:
            self.close()
        return False

    # Internals ---------------------------------------------------------------------------

    def _inactive(self) -> bool:
        return self._stop.is_set() or self.finished or self._closed

    def _report(self, kind: str, body: dict, *, finishing: bool = False) -> dict | None:
        """Send one report at once; None (and the stop signal) when the run is over."""
        if self._inactive():
            return None
        try:
            with self._api_lock:
                run = self._api.report(kind, body)
        except Conflict as exc:
            if self._on_conflict(exc):
                return None
            raise
        except AuthError:
            self._set_stopped("unauthorized")
            raise
        self._apply_run(run, own_finish=finishing)
        return run

    def _finish(self, kind: str, body: dict) -> dict | None:
        run = self._report(kind, body, finishing=True)
        if run is not None:
            with self._lock:
                self.finished = True
                self._changed.notify_all()
        return run

    def _on_conflict(self, error: Conflict) -> bool:
        """A 409: is the run over? Then raise the stop signal and say so."""
        try:
            run = self.read_run()
        except ClientError:
            logger.warning("a report was refused (%s) and the run could not be read", error)
            return False
        if run.get("status") in TERMINAL_STATUSES:
            return True  # _apply_run raised the stop signal
        if run.get("status") == "pending":
            logger.warning("run %s has not started yet (its experiment is not running)", self.run_id)
        return False

    def _on_auth_error(self, error: AuthError) -> None:
        logger.error("run %s: the run token was refused (%s)", self.run_id, error)
        self._set_stopped("unauthorized")

    def _apply_run(self, run: Mapping, *, own_finish: bool = False) -> None:
        """Learn from a run body (a report's answer, a poll, the socket's snapshot).

        A run that ended raises the stop signal, unless the agent ended it itself.
        """
        if not isinstance(run, Mapping) or "status" not in run:
            return
        approval = run.get("approval") or {}
        with self._lock:
            self.run = dict(run)
            decision = _decision_from_approval(approval)
            round_key = approval.get("requested_at")
            if decision is not None and round_key:
                self._round_decisions[round_key] = decision
            self._changed.notify_all()
        status = run["status"]
        if status in TERMINAL_STATUSES and not (own_finish or self.finished):
            if approval.get("state") == "timed_out":
                reason = "approval_timeout"
            else:
                reason = run.get("stop_reason") or status
            self._set_stopped(reason)

    def _on_socket_message(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "snapshot":
            self._apply_run(message.get("run") or {})
        elif kind == "control":
            action = message.get("action")
            feedback = message.get("feedback")
            if action == "stop":
                self._set_stopped(message.get("reason") or "stopped")
            elif action in ("approved", "rejected"):
                state = "approved" if action == "approved" else ("revise" if message.get("revise") else "rejected")
                with self._lock:
                    self._control_decision = Decision(state, feedback)
                    self._changed.notify_all()

    def _decision_after_stop(self) -> Decision:
        if self.stop_reason == "approval_timeout":
            return Decision("timed_out")
        if self.stop_reason == "plan_rejected":
            return Decision("rejected", ((self.run or {}).get("approval") or {}).get("feedback"))
        return Decision("stopped")

    def _wait_for_decision(self, round_key: str | None, timeout: float | None) -> Decision:
        deadline = None if timeout is None else time.monotonic() + timeout
        last_poll = time.monotonic()
        while True:
            with self._lock:
                decision = self._control_decision or self._round_decisions.get(round_key)
                if decision is not None:
                    return decision
                if self._stop.is_set():
                    return self._decision_after_stop()
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise TimeoutError(f"no decision on the plan within {timeout} s")
                # Over a live socket the decision arrives by itself; poll rarely as a backstop.
                every = self.poll_interval if not self.socket_connected else max(self.poll_interval, 15.0)
                wait = every - (now - last_poll)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                if wait > 0:
                    self._changed.wait(wait)
                    continue
            last_poll = time.monotonic()
            try:
                self.read_run()
            except (Unreachable, ClientError) as exc:
                logger.info("polling the run failed: %s", exc)
