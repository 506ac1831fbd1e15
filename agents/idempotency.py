"""``Idempotency-Key`` for agent reports.

The first request with a key claims it in its own committed row (``in_flight``), then
runs the report and stores the response (``done``) in the report's own transaction. A
repeat with the same body gets the stored response and changes nothing; with another
body, 422; while the first is still running, 409 (so a retry racing the original can
never write twice). A claim whose request failed (a 5xx) is released so that the retry can
run; one left behind by a killed process is taken over after ``STALE_SECONDS``, and if
its owner was only slow, whichever of the two stores its answer first wins: the other's
report rolls back with its answer.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import IdempotencyRecord

MAX_KEY_LENGTH = 200
STALE_SECONDS = 60
KEEP_DAYS = 7


def request_hash(kind: str, data) -> str:
    """The body as canonical JSON (keys sorted), hashed: the same report however it is laid out."""
    try:
        canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:  # not JSON-like (cannot come from a parsed body): fall back
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode(
            "utf-8", "surrogatepass"
        )
    return hashlib.sha256(kind.encode() + b"\n" + canonical).hexdigest()


def key_problem(key: str) -> str | None:
    if len(key) > MAX_KEY_LENGTH:
        return f"Idempotency-Key is at most {MAX_KEY_LENGTH} characters."
    if not key.strip() or not key.isprintable():
        return "Idempotency-Key must be printable text."
    return None


def _envelope(code: str, detail: str) -> dict:
    return {"error": code, "detail": detail}


def _in_flight(detail: str) -> dict:
    # Still a 409 ``conflict``, marked so that a client can tell "retry in a moment" from
    # "the run is no longer active" (which it must not retry).
    return {**_envelope("conflict", detail), "in_flight": True}


class _Superseded(Exception):
    """Our claim was taken over (we looked dead): the other request's answer stands."""


def run_once(
    *, run, key: str | None, fingerprint: Callable[[], str], compute: Callable[[], tuple[int, dict]]
) -> tuple[int, dict]:
    """``compute`` once per key; ``fingerprint`` (the body's hash) is only taken with a key."""
    if key is None:
        return compute()
    problem = key_problem(key)
    if problem:
        return 400, _envelope("bad_request", problem)
    fingerprint = fingerprint()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(run_id=run.pk, key=key, request_hash=fingerprint)
    except IntegrityError:
        outcome = _existing(run, key, fingerprint)
        if isinstance(outcome, tuple):
            return outcome
        record = outcome
    try:
        # The report and its stored answer commit together: a process that dies between
        # them leaves neither, and the retry (after STALE_SECONDS) runs the report once.
        with transaction.atomic():
            status, body = compute()
            if status < 500:
                _settle(record, status, body)
    except _Superseded:
        stored = IdempotencyRecord.objects.filter(pk=record.pk).first()
        if stored is not None and stored.state == IdempotencyRecord.State.DONE:
            return stored.status_code, stored.response
        return 409, _in_flight("A request with this Idempotency-Key is still in flight; retry.")
    except BaseException:
        _release(record)
        raise
    if status >= 500:
        _release(record)
    return status, body


def _settle(record: IdempotencyRecord, status: int, body: dict) -> None:
    """Store the answer, if the claim is still ours (same claim time, still in flight)."""
    done = IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT, created_at=record.created_at
    ).update(state=IdempotencyRecord.State.DONE, status_code=status, response=body)
    if not done:
        raise _Superseded  # rolls the report back: the request that took over stands


def _release(record: IdempotencyRecord) -> None:
    """Free the key of a request that failed (5xx, crash) so that its retry can run."""
    IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT, created_at=record.created_at
    ).delete()


def _existing(run, key: str, fingerprint: str) -> tuple[int, dict] | IdempotencyRecord:
    """The answer for a key already used, or the record when a stale claim was taken over."""
    record = IdempotencyRecord.objects.filter(run_id=run.pk, key=key).first()
    if record is None:  # released between our insert and this read: the client retries
        return 409, _in_flight("A request with this Idempotency-Key is in flight; retry.")
    if record.request_hash != fingerprint:
        return 422, _envelope("unprocessable", "This Idempotency-Key was already used with a different body.")
    if record.state == IdempotencyRecord.State.DONE:
        return record.status_code, record.response
    stale_before = timezone.now() - timedelta(seconds=STALE_SECONDS)
    claimed_at = timezone.now()
    taken = IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT, created_at__lt=stale_before
    ).update(created_at=claimed_at)
    if taken:
        record.created_at = claimed_at
        return record
    return 409, _in_flight("A request with this Idempotency-Key is still in flight; retry.")


def prune_records(*, now=None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=KEEP_DAYS)
    return IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()[0]
