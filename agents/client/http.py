"""HTTP for the agent client: each report is sent with one ``Idempotency-Key`` for all its
tries, so a retry after a lost answer can never be counted twice by the server.

Retried, with exponential backoff and jitter: connection errors and timeouts, 429 (after
its ``Retry-After``), 5xx, and the 409 the server answers while the first try of the same
key is still in flight. Not retried: every other 4xx, which the caller must handle.
"""

import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass

import httpx

logger = logging.getLogger("research_engine.client")

USER_AGENT = "research-engine-agent-client/1.0"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ClientError(Exception):
    """The server refused a request (4xx), or could not be reached after every retry."""

    def __init__(self, message: str, *, status: int | None = None, body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


class AuthError(ClientError):
    """401: the run token is wrong or was revoked (re-issued by an operator)."""


class Conflict(ClientError):
    """409: the run is not in a state to take this report (finished, or not started)."""


class Unreachable(ClientError):
    """No answer after every retry (connection refused, timeouts, 5xx)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    backoff: float = 0.5
    max_backoff: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1`` (attempt counts from 1), with jitter."""
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)


def new_key() -> str:
    return uuid.uuid4().hex


def _body_of(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {"error": "bad_response", "detail": response.text[:500]}
    return body if isinstance(body, dict) else {"value": body}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class Api:
    """One HTTP connection pool for one thread, authenticated with the run token."""

    def __init__(
        self,
        base_url: str,
        run_id: str,
        token: str,
        *,
        timeout: float,
        retry: RetryPolicy,
        interrupted: threading.Event | None = None,
    ):
        self.run_id = run_id
        self.retry = retry
        # Set when the client closes: a backoff sleep ends at once.
        self.interrupted = interrupted or threading.Event()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/research/",
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def report(self, kind: str, body: dict, *, key: str | None = None) -> dict:
        """POST ``agents/{run_id}/{kind}``; the parsed 200 body, or a ``ClientError``."""
        content = json.dumps(body, allow_nan=False, separators=(",", ":"))
        headers = {"Content-Type": "application/json", "Idempotency-Key": key or new_key()}
        return self._send("POST", f"agents/{self.run_id}/{kind}", content=content, headers=headers)

    def read_run(self) -> dict:
        """``GET agents/{run_id}``: the run as the API shows it."""
        return self._send("GET", f"agents/{self.run_id}")

    def _send(self, method: str, path: str, **kwargs) -> dict:
        attempt = 0
        while True:
            attempt += 1
            wait = None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 300:
                    return _body_of(response)
                body = _body_of(response)
                in_flight = status == 409 and body.get("in_flight") is True
                if status not in RETRY_STATUSES and not in_flight:
                    raise self._refusal(method, path, status, body)
                problem = f"HTTP {status}"
                wait = _retry_after(response) if status == 429 else None
            if attempt >= self.retry.attempts or self.interrupted.is_set():
                raise Unreachable(f"{method} {path}: no answer after {attempt} tries ({problem})")
            delay = wait if wait is not None else self.retry.delay(attempt)
            logger.info("%s %s failed (%s); retrying in %.1f s", method, path, problem, delay)
            if self.interrupted.wait(delay):
                raise Unreachable(f"{method} {path}: interrupted while retrying ({problem})")

    @staticmethod
    def _refusal(method: str, path: str, status: int, body: dict) -> ClientError:
        message = f"{method} {path}: {status} {body.get('error', '')}: {body.get('detail', '')}".strip()
        if status == 401:
            return AuthError(message, status=status, body=body)
        if status == 409:
            return Conflict(message, status=status, body=body)
        return ClientError(message, status=status, body=body)
