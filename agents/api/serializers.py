"""Run bodies (as the contract lists them) and the bodies operators send about runs.

Run bodies are built by hand in ``run_representation``: a results page or a snapshot may
hold thousands of runs, and DRF's field-by-field rendering costs ~1 ms a run. The declared
fields still describe the body for the OpenAPI schema.
"""

from rest_framework import serializers

from agents.models import AgentRun, RunStatus
from experiments.api.fields import BoundedJSONField, StrictBooleanField, StrictCharField, StrictFieldsMixin
from experiments.timestamps import format_timestamp

RUN_SELECT_RELATED = ("experiment", "retry_of")


def run_representation(run: AgentRun) -> dict:
    return {
        "id": run.public_id,
        "experiment_id": run.experiment.public_id,
        "agent_type": run.agent_type,
        "name": run.name,
        "attempt": run.attempt,
        "retry_of": run.retry_of.public_id if run.retry_of_id else None,
        "status": run.status,
        "progress_percent": run.progress_percent,
        "current_action": run.current_action,
        "metrics": run.metrics,
        "plan": run.plan,
        "approval": run.approval,
        "result": run.result,
        "validation": run.validation,
        "error": run.error,
        "stop_reason": run.stop_reason or None,
        "config": run.config,
        "created_at": format_timestamp(run.created_at),
        "started_at": format_timestamp(run.started_at),
        "completed_at": format_timestamp(run.completed_at),
    }


class RunMetricsSerializer(serializers.Serializer):
    tokens_used = serializers.IntegerField()
    cost = serializers.FloatField()
    elapsed_time = serializers.FloatField()


class RunSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Public id, `run_…`.")
    experiment_id = serializers.CharField()
    agent_type = serializers.CharField()
    name = serializers.CharField()
    attempt = serializers.IntegerField(help_text="1 for the first attempt, +1 per retry.")
    retry_of = serializers.CharField(allow_null=True, help_text="The run this one retries.")
    status = serializers.ChoiceField(choices=RunStatus.choices)
    progress_percent = serializers.FloatField()
    current_action = serializers.CharField()
    metrics = RunMetricsSerializer(help_text="tokens_used, cost, elapsed_time and free keys.")
    plan = serializers.JSONField(allow_null=True)
    approval = serializers.JSONField(allow_null=True)
    result = serializers.JSONField(allow_null=True)
    validation = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    stop_reason = serializers.CharField(allow_null=True)
    config = serializers.JSONField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance):
        return run_representation(instance)


class RunWithTokenSerializer(RunSerializer):
    token = serializers.CharField(help_text="The run token, shown only in this response.")

    def to_representation(self, instance):
        run, token = instance
        return {**run_representation(run), "token": token}


class RunSpecSerializer(StrictFieldsMixin, serializers.Serializer):
    """One agent of an experiment, as sent to create it."""

    agent_type = StrictCharField(
        max_length=64,
        help_text="Kind of agent, e.g. `claude_code`.",
    )
    name = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    config = BoundedJSONField(required=False, default=dict, object_only=True)

    def validate_agent_type(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/")
        if not set(value) <= allowed:
            raise serializers.ValidationError("Use letters, digits and _ - . : / only.")
        return value


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class BulkRunActionSerializer(StrictFieldsMixin, serializers.Serializer):
    action = serializers.ChoiceField(choices=["stop"])
    run_ids = serializers.ListField(child=StrictCharField(max_length=64), min_length=1, max_length=100)


class ApprovalSerializer(StrictFieldsMixin, serializers.Serializer):
    approved = StrictBooleanField()
    feedback = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000)
    revise = StrictBooleanField(required=False, default=False)
