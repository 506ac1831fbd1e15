"""Serializer building blocks with explicit bounds, shared by every app's API."""

import json
import math

from rest_framework import serializers

MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 20


def _depth(value, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _has_non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class BoundedJSONField(serializers.JSONField):
    """Any JSON value up to ``max_bytes`` encoded and ``MAX_JSON_DEPTH`` deep, finite numbers.

    Text may not hold NUL (``\\u0000``): PostgreSQL's jsonb cannot store it, so it would
    fail there as a server error instead of a 400.
    """

    def __init__(self, *, max_bytes: int = MAX_JSON_BYTES, object_only: bool = False, **kwargs):
        self.max_bytes = max_bytes
        self.object_only = object_only
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if self.object_only and not isinstance(data, dict):
            raise serializers.ValidationError("Expected a JSON object.")
        if _depth(data) > MAX_JSON_DEPTH:
            raise serializers.ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
        if _has_non_finite(data):
            raise serializers.ValidationError("Numbers must be finite (no NaN or Infinity).")
        if _has_nul(data):
            raise serializers.ValidationError("Text may not contain NUL (\\u0000) characters.")
        size = len(json.dumps(data, separators=(",", ":")).encode())
        if size > self.max_bytes:
            raise serializers.ValidationError(f"Larger than {self.max_bytes} bytes when encoded ({size}).")
        return data


class StrictFieldsMixin:
    """Refuse fields the serializer does not know, instead of silently ignoring them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class FiniteFloatField(serializers.FloatField):
    """A float that refuses NaN, ±Infinity, booleans and numeric strings."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise serializers.ValidationError("A number is required.")
        value = float(data)
        if not math.isfinite(value):
            raise serializers.ValidationError("Must be a finite number.")
        return super().to_internal_value(value)


class StrictIntegerField(serializers.IntegerField):
    """An integer that refuses booleans, strings and fractional numbers."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise serializers.ValidationError("A whole number is required.")
        if isinstance(data, float) and not (math.isfinite(data) and data.is_integer()):
            raise serializers.ValidationError("A whole number is required.")
        return super().to_internal_value(int(data))


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of coercing them."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("A string is required.")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.")
        return data
