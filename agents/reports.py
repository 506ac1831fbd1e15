"""The agent's reports, one way in for REST and the agent socket alike.

``handle_report`` validates a report body with the same bounds everywhere, runs it once
per ``Idempotency-Key`` and answers ``(status, body)``: 200 with the run (or
``{"accepted": n}`` for metrics and logs), 400 with ``fields``, 409 ``conflict``, 422 for
a reused key. A bad report stores nothing.
"""

import math

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from agents import approval, reporting
from agents.api.serializers import run_representation
from agents.idempotency import request_hash, run_once
from agents.metrics import parse_points
from agents.models import AgentRun, LogLevel
from experiments.api.errors import validation_body
from experiments.api.fields import (
    BoundedJSONField,
    FiniteFloatField,
    StrictBooleanField,
    StrictCharField,
    StrictFieldsMixin,
)
from experiments.errors import ConflictError
from experiments.timestamps import parse_timestamp

MAX_LOG_LINES = 1000
MAX_LOG_MESSAGE_BYTES = 64 * 1024
MAX_METRIC_KEYS = 50
LOG_LEVEL_ALIASES = {"warn": "warning", "err": "error", "fatal": "critical", "trace": "debug"}


def clean_run_metrics(value) -> dict:
    """``tokens_used``, ``cost``, ``elapsed_time`` and free keys of a run's metrics."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("Expected an object of metrics.")
    if len(value) > MAX_METRIC_KEYS:
        raise serializers.ValidationError(f"At most {MAX_METRIC_KEYS} metrics.")
    clean, errors = {}, {}
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 100:
            errors[str(key)[:100]] = ["Metric names are 1 to 100 characters."]
            continue
        if key == "tokens_used":
            if isinstance(item, float) and item.is_integer():
                item = int(item)  # noqa: PLW2901 (normalised in place)
            if isinstance(item, bool) or not isinstance(item, int) or item < 0 or item > 2**62:
                errors[key] = ["A whole number ≥ 0 is required."]
                continue
        elif key in ("cost", "elapsed_time"):
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item) or item < 0:
                errors[key] = ["A finite number ≥ 0 is required."]
                continue
            item = float(item)  # noqa: PLW2901
        elif isinstance(item, float) and not math.isfinite(item):
            errors[key] = ["Numbers must be finite."]
            continue
        elif isinstance(item, str) and len(item) > 1000:
            errors[key] = ["Text values are at most 1000 characters."]
            continue
        elif item is not None and not isinstance(item, (bool, int, float, str)):
            errors[key] = ["A number, text, true/false or null is required."]
            continue
        clean[key] = item
    if errors:
        raise serializers.ValidationError(errors)
    return clean


class RunMetricsField(serializers.Field):
    def to_internal_value(self, data):
        return clean_run_metrics(data)

    def to_representation(self, value):
        return value


class ProgressReport(StrictFieldsMixin, serializers.Serializer):
    progress_percent = FiniteFloatField(min_value=0, max_value=100)
    current_action = StrictCharField(max_length=1000, required=False, allow_blank=True, trim_whitespace=False)
    metrics = RunMetricsField(required=False)


class PlanReport(StrictFieldsMixin, serializers.Serializer):
    plan = BoundedJSONField(max_bytes=256 * 1024)

    def validate_plan(self, value):
        if value is None or value in ("", {}, []):
            raise serializers.ValidationError("A plan is required.")
        return value


class ValidationReport(StrictFieldsMixin, serializers.Serializer):
    passed = StrictBooleanField()
    details = BoundedJSONField(required=False, allow_null=True, default=None)


class CompleteReport(StrictFieldsMixin, serializers.Serializer):
    result = BoundedJSONField(required=False, allow_null=True, default=None, max_bytes=512 * 1024)
    metrics = RunMetricsField(required=False)


class FailReport(StrictFieldsMixin, serializers.Serializer):
    error = StrictCharField(max_length=10_000)


def parse_log_lines(data) -> list[dict]:
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Expected an object with lines."]})
    unknown = sorted(set(data) - {"lines"})
    if unknown:
        raise ValidationError({name: ["Unknown field."] for name in unknown})
    raw = data.get("lines")
    if not isinstance(raw, list) or not raw:
        raise ValidationError({"lines": ["A non-empty list of lines is required."]})
    if len(raw) > MAX_LOG_LINES:
        raise ValidationError({"lines": [f"At most {MAX_LOG_LINES} lines a call ({len(raw)} sent)."]})
    lines, errors = [], {}
    for i, item in enumerate(raw):
        problems = {}
        if not isinstance(item, dict):
            errors[str(i)] = {"non_field_errors": ["A line is an object with level and message."]}
            continue
        for name in sorted(set(item) - {"level", "message", "timestamp"}):
            problems[name] = ["Unknown field."]
        level = item.get("level")
        if isinstance(level, str):
            level = LOG_LEVEL_ALIASES.get(level.lower(), level.lower())
        if level not in LogLevel.values:
            problems["level"] = [f"One of: {', '.join(LogLevel.values)}."]
        message = item.get("message")
        if not isinstance(message, str):
            problems["message"] = ["A string is required."]
        elif len(message.encode("utf-8", "surrogatepass")) > MAX_LOG_MESSAGE_BYTES:
            problems["message"] = [f"At most {MAX_LOG_MESSAGE_BYTES} bytes."]
        timestamp = item.get("timestamp")
        if timestamp is not None:
            timestamp = parse_timestamp(timestamp)
            if timestamp is None:
                problems["timestamp"] = ["An ISO 8601 timestamp is required."]
        if problems:
            errors[str(i)] = problems
            continue
        lines.append({"level": level, "message": message.replace("\x00", "\ufffd"), "timestamp": timestamp})
    if errors:
        raise ValidationError({"lines": errors})
    return lines


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _progress(run, data):
    run = reporting.record_progress(run=run, **_validated(ProgressReport, data))
    return run_representation(run)


def _metrics(run, data):
    return {"accepted": reporting.record_metrics(run=run, points=parse_points(data))}


def _logs(run, data):
    return {"accepted": reporting.append_logs(run=run, lines=parse_log_lines(data))}


def _plan(run, data):
    return run_representation(approval.submit_plan(run=run, **_validated(PlanReport, data)))


def _validation(run, data):
    return run_representation(reporting.record_validation(run=run, **_validated(ValidationReport, data)))


def _complete(run, data):
    return run_representation(reporting.complete(run=run, **_validated(CompleteReport, data)))


def _fail(run, data):
    return run_representation(reporting.report_failure(run=run, **_validated(FailReport, data)))


HANDLERS = {
    "progress": _progress,
    "metrics": _metrics,
    "logs": _logs,
    "plan": _plan,
    "validation": _validation,
    "complete": _complete,
    "fail": _fail,
}
REPORT_KINDS = tuple(HANDLERS)
SERIALIZERS = {
    "progress": ProgressReport,
    "plan": PlanReport,
    "validation": ValidationReport,
    "complete": CompleteReport,
    "fail": FailReport,
}


def handle_report(*, run: AgentRun, kind: str, data, idempotency_key: str | None = None) -> tuple[int, dict]:
    def compute() -> tuple[int, dict]:
        try:
            return 200, HANDLERS[kind](run, data)
        except ValidationError as exc:
            return 400, validation_body(exc.detail)
        except ConflictError as exc:
            return 409, {"error": "conflict", "detail": exc.detail}

    return run_once(run=run, key=idempotency_key, fingerprint=lambda: request_hash(kind, data), compute=compute)


def handle_report_in_thread(
    *, run_pk: int, kind: str, data, idempotency_key: str | None, token_hash: str | None = None
) -> tuple[int, dict]:
    """``handle_report`` for the agent socket, which holds only the run's key and the hash
    of the token it was opened with: a token re-issued since then no longer reports (401)."""
    run = AgentRun.objects.select_related("experiment").filter(pk=run_pk).first()
    if run is None:
        return 404, {"error": "not_found", "detail": "The run no longer exists."}
    if token_hash is not None and run.token_hash != token_hash:
        return 401, {"error": "not_authenticated", "detail": "The run token was revoked; connect with the new one."}
    return handle_report(run=run, kind=kind, data=data, idempotency_key=idempotency_key)
