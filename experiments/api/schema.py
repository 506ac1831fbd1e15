"""OpenAPI pieces shared by every view: the error envelope and its responses, and how
the project's own auth class and fields appear in the schema.

Every API module imports this one, so the extensions below are registered before the
schema is generated (``manage.py spectacular --validate --fail-on-warn`` stays clean).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from experiments.api.errors import STATUS_CODES


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Short machine-readable code, e.g. `not_found`.")
    detail = serializers.CharField(help_text="What went wrong, for humans.")


class ValidationErrorSerializer(ErrorSerializer):
    fields = serializers.DictField(
        # A list of messages; for a list or nested object, the same shape again per
        # index or key (e.g. `{"agents": {"0": {"agent_type": ["This field is required."]}}}`).
        child=serializers.JSONField(),
        required=False,
        help_text=(
            "Messages per field (`validation_error` only): a list of strings, or for a list or "
            "nested object an object of the same shape per index or key."
        ),
    )


_DESCRIPTIONS = {
    400: "Invalid input (`validation_error`, with `fields`) or an unreadable body (`bad_request`).",
    401: "No credentials, or invalid or revoked ones (`not_authenticated`).",
    403: "Your role on the experiment does not allow this (`permission_denied`).",
    404: "No such object, or not one you may see (`not_found`).",
    405: "Method not allowed here.",
    406: "Unknown API version in `Accept` (`not_acceptable`).",
    409: "The current state does not allow this (`conflict`).",
    413: "The body or file is too large (`payload_too_large`).",
    415: "The body is not of an accepted media type.",
    422: "The Idempotency-Key was used before with another body (`unprocessable`).",
    429: "Too many requests (`rate_limited`); see `Retry-After`.",
    503: "A dependency is down (`unavailable`).",
}

ERRORS = {code: STATUS_CODES[code] for code in _DESCRIPTIONS}


def error_responses(*codes: int) -> dict:
    responses = {}
    for code in codes:
        serializer = ValidationErrorSerializer if code == 400 else ErrorSerializer
        responses[code] = OpenApiResponse(serializer, description=_DESCRIPTIONS[code])
    return responses


def inline(name: str, fields: dict):
    return inline_serializer(name=name, fields=fields)


class RunTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <run token>``: an agent reporting on its own run."""

    target_class = "agents.api.authentication.RunTokenAuthentication"
    name = "runToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The run's own token, shown once when the run is created or re-issued.",
        }


class RunMetricsFieldSchema(OpenApiSerializerFieldExtension):
    """A run's metrics: three known numbers and free keys of scalar values."""

    target_class = "agents.reports.RunMetricsField"

    def map_serializer_field(self, auto_schema, direction):
        scalar = {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}], "nullable": True}
        return {
            "type": "object",
            "properties": {
                "tokens_used": {"type": "integer", "minimum": 0},
                "cost": {"type": "number", "minimum": 0},
                "elapsed_time": {"type": "number", "minimum": 0},
            },
            "additionalProperties": scalar,
            "maxProperties": 50,
        }
