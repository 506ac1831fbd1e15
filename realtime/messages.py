"""Validation of what clients send on the dashboard socket, before anything acts on it.

``parse_client_message`` turns a text frame into a ``ClientMessage`` or raises
``MessageError`` with the code and detail of the ``error`` reply. Nothing a client sends
may raise anything else.
"""

import json
from dataclasses import dataclass

from experiments.ids import looks_like
from realtime.event_types import EVENT_TYPES

MAX_RUN_IDS = 100


class MessageError(Exception):
    def __init__(self, code: str, detail: str, message_id=None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.message_id = message_id

    def payload(self) -> dict:
        body = {"type": "error", "code": self.code, "detail": self.detail}
        if self.message_id is not None:
            body["id"] = self.message_id
        return body


@dataclass(frozen=True)
class ClientMessage:
    type: str
    experiment_id: str | None = None
    run_ids: frozenset | None = None
    event_types: frozenset | None = None
    since: int | None = None
    id: object = None


def decode(text: str | None, bytes_data: bytes | None, max_bytes: int) -> object:
    if text is None:
        if bytes_data is not None and len(bytes_data) > max_bytes:
            raise MessageError("message_too_large", f"Messages are at most {max_bytes} bytes.")
        raise MessageError("bad_request", "Send JSON as text frames; binary frames are not read.")
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise MessageError("message_too_large", f"Messages are at most {max_bytes} bytes.")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise MessageError("invalid_json", "The message is not valid JSON.") from None


def message_id(data) -> object:
    """The client's ``id``, echoed in replies when it is a short string or an integer."""
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and len(value) <= 100):
        return value
    return None


def _experiment_id(data: dict, msg_id, *, required: bool) -> str | None:
    if "experiment_id" not in data:
        if required:
            raise MessageError("bad_request", "experiment_id is required (null for the global stream).", msg_id)
        return None
    value = data["experiment_id"]
    if value is None:
        return None
    if not looks_like(value, "exp"):
        raise MessageError("bad_request", "experiment_id must be an experiment id (exp_…) or null.", msg_id)
    return value


def _run_ids(data: dict, msg_id) -> frozenset | None:
    value = data.get("run_id", data.get("run_ids"))
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or len(values) > MAX_RUN_IDS:
        raise MessageError("bad_request", f"run_id must be a run id or a list of 1 to {MAX_RUN_IDS}.", msg_id)
    if not all(looks_like(v, "run") for v in values):
        raise MessageError("bad_request", "run_id must hold run ids (run_…).", msg_id)
    return frozenset(values)


def _event_types(data: dict, msg_id) -> frozenset | None:
    value = data.get("event_types")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise MessageError("bad_request", "event_types must be a non-empty list of event types.", msg_id)
    unknown = sorted(set(value) - EVENT_TYPES)
    if unknown:
        raise MessageError("bad_request", f"Unknown event types: {', '.join(unknown)}.", msg_id)
    return frozenset(value)


def _since(data: dict, msg_id) -> int | None:
    value = data.get("since")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MessageError("bad_request", "since must be a whole number ≥ 0.", msg_id)
    return value


def parse_client_message(data: object) -> ClientMessage:
    if not isinstance(data, dict):
        raise MessageError("bad_request", "A message is a JSON object with a type.")
    msg_id = message_id(data)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise MessageError("bad_request", "A message needs a string type.", msg_id)
    if kind == "ping":
        return ClientMessage("ping", id=msg_id)
    if kind == "subscribe":
        return ClientMessage(
            "subscribe",
            experiment_id=_experiment_id(data, msg_id, required=True),
            run_ids=_run_ids(data, msg_id),
            event_types=_event_types(data, msg_id),
            since=_since(data, msg_id),
            id=msg_id,
        )
    if kind == "unsubscribe":
        return ClientMessage("unsubscribe", experiment_id=_experiment_id(data, msg_id, required=True), id=msg_id)
    raise MessageError(
        "unknown_type", f"Unknown message type {kind[:50]!r}: use subscribe, unsubscribe or ping.", msg_id
    )
