"""Timestamps as the contract writes them: ISO 8601 in UTC with a ``Z`` suffix."""

from datetime import UTC, datetime

from django.utils import timezone


def format_timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if timezone.is_aware(value):
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def parse_timestamp(value: str) -> datetime | None:
    """An aware datetime from ISO 8601 (``Z`` or an offset; naive means UTC), or None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
