"""Runtime settings: stored in the database, validated, effective at once everywhere.

Each process keeps the values for at most ``CACHE_SECONDS``; a change also reaches every
process at once as a ``config_updated`` event, on which the realtime hub calls
``invalidate()``. So a change takes effect immediately where sockets listen and within
a second anywhere else, without a restart.
"""

import math
import threading
import time
from dataclasses import dataclass

from django.db import transaction

from experiments import signals
from experiments.models import RuntimeSetting

CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Key:
    default: int
    minimum: int
    maximum: int
    help: str


KEYS: dict[str, Key] = {
    "approval_timeout_seconds": Key(300, 5, 86_400, "Seconds a plan waits for a decision."),
    "event_retention_days": Key(30, 1, 36_500, "Days events are kept (prune_events)."),
    "user_rate_per_minute": Key(1_200, 1, 10_000_000, "Requests a minute per signed-in user."),
    "anon_rate_per_minute": Key(120, 1, 10_000_000, "Requests a minute per anonymous IP."),
    "agent_rate_per_minute": Key(6_000, 1, 10_000_000, "Requests a minute per run token."),
    "ws_messages_per_second": Key(50, 1, 100_000, "Client messages a second per socket."),
}
# A socket may send this many times its per-second rate at once before it is cut off.
WS_BURST_FACTOR = 4

_lock = threading.Lock()
_cache: dict = {"values": None, "at": 0.0}


def defaults() -> dict[str, int]:
    return {name: key.default for name, key in KEYS.items()}


def get_config() -> dict[str, int]:
    """The effective settings (stored values over defaults), cached for a second."""
    now = time.monotonic()
    values = _cache["values"]
    if values is not None and now - _cache["at"] < CACHE_SECONDS:
        return values
    values = defaults()
    for key, value in RuntimeSetting.objects.filter(key__in=KEYS).values_list("key", "value"):
        values[key] = value
    with _lock:
        _cache["values"], _cache["at"] = values, now
    return values


def get(name: str) -> int:
    return get_config()[name]


def invalidate() -> None:
    with _lock:
        _cache["values"] = None


def validate(changes: object) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Check a partial config; returns the clean values and the errors per field."""
    if not isinstance(changes, dict):
        return {}, {"non_field_errors": ["Expected an object of settings."]}
    clean, errors = {}, {}
    for name, value in changes.items():
        key = KEYS.get(name)
        if key is None:
            errors[name] = [f"Unknown setting. Known: {', '.join(sorted(KEYS))}."]
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors[name] = ["Must be a whole number."]
            continue
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            errors[name] = ["Must be a whole number."]
            continue
        value = int(value)  # noqa: PLW2901
        if not key.minimum <= value <= key.maximum:
            errors[name] = [f"Must be between {key.minimum} and {key.maximum}."]
            continue
        clean[name] = value
    if not changes and not errors:
        errors["non_field_errors"] = ["Send at least one setting to change."]
    return clean, errors


@transaction.atomic
def update_config(*, changes: dict[str, int], by) -> dict[str, int]:
    """Store already-validated values and announce them (``config_updated``)."""
    for name, value in changes.items():
        RuntimeSetting.objects.update_or_create(key=name, defaults={"value": value})
    invalidate()
    values = defaults()
    for key, value in RuntimeSetting.objects.filter(key__in=KEYS).values_list("key", "value"):
        values[key] = value
    signals.runtime_config_changed.send(sender=RuntimeSetting, values=values, changed=changes, by=by)
    transaction.on_commit(invalidate)
    return values
