"""Experiment bodies and the requests about experiments, each with explicit bounds."""

from rest_framework import serializers

from agents.api.serializers import RunSerializer, RunSpecSerializer, run_representation
from agents.models import RunStatus
from experiments.api.fields import BoundedJSONField, StrictCharField, StrictFieldsMixin
from experiments.models import Experiment, ExperimentStatus, Role
from experiments.timestamps import format_timestamp

MAX_AGENTS_PER_EXPERIMENT = 200


def run_summary(runs) -> dict:
    """Counts and totals over an experiment's runs (superseded attempts excluded)."""
    retried = {r.retry_of_id for r in runs if r.retry_of_id}
    latest = [r for r in runs if r.pk not in retried]
    by_status = {}
    tokens = 0
    cost = 0.0
    for run in runs:
        metrics = run.metrics or {}
        tokens += _number(metrics.get("tokens_used"))
        cost += _number(metrics.get("cost"))
    for run in latest:
        by_status[run.status] = by_status.get(run.status, 0) + 1
    progress = (
        sum(100.0 if r.status == RunStatus.COMPLETED else r.progress_percent for r in latest) / len(latest)
        if latest
        else 0.0
    )
    return {
        "total_agents": len(latest),
        "runs_by_status": by_status,
        "progress_percent": round(progress, 2),
        "tokens_used": int(tokens),
        "cost": round(cost, 6),
    }


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def experiment_representation(
    experiment: Experiment, *, runs=None, role: str | None = None, include_runs: bool = True
) -> dict:
    """The experiment body. ``runs`` defaults to the prefetched ``experiment.runs``."""
    if runs is None:
        runs = list(experiment.runs.all())
    body = {
        "id": experiment.public_id,
        "name": experiment.name,
        "description": experiment.description,
        "config": experiment.config,
        "status": experiment.status,
        "created_by": experiment.created_by.username if experiment.created_by_id else None,
        "created_at": format_timestamp(experiment.created_at),
        "updated_at": format_timestamp(experiment.updated_at),
        "started_at": format_timestamp(experiment.started_at),
        "completed_at": format_timestamp(experiment.completed_at),
        **run_summary(runs),
    }
    if role is not None:
        body["role"] = role
    if include_runs:
        for run in runs:  # the runs' experiment is this one: save a query per run
            run.experiment = experiment
        body["runs"] = [run_representation(run) for run in runs]
    return body


class ExperimentSerializer(serializers.Serializer):
    """Read body. ``runs`` is present on the detail, on create and in snapshots."""

    id = serializers.CharField(help_text="Public id, `exp_…`.")
    name = serializers.CharField()
    description = serializers.CharField()
    config = serializers.JSONField()
    status = serializers.ChoiceField(choices=ExperimentStatus.choices)
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    total_agents = serializers.IntegerField(help_text="Latest attempts only.")
    runs_by_status = serializers.DictField(child=serializers.IntegerField())
    progress_percent = serializers.FloatField(help_text="Mean over the latest attempts.")
    tokens_used = serializers.IntegerField()
    cost = serializers.FloatField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="The caller's role.")
    runs = RunSerializer(many=True, required=False)

    def to_representation(self, instance):
        request = self.context.get("request")
        role = None
        if request is not None:
            role = self.context.get("roles", {}).get(instance.pk) or instance.role_of(request.user)
        return experiment_representation(instance, role=role, include_runs=self.context.get("include_runs", True))


class ExperimentCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """``POST experiments`` and the import spec file."""

    name = StrictCharField(max_length=200)
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True, default="")
    config = BoundedJSONField(required=False, default=dict, object_only=True)
    agents = RunSpecSerializer(many=True, required=False, default=list)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate_agents(self, value: list) -> list:
        if len(value) > MAX_AGENTS_PER_EXPERIMENT:
            raise serializers.ValidationError(f"At most {MAX_AGENTS_PER_EXPERIMENT} agents per experiment.")
        return value


class ExperimentCreatedSerializer(ExperimentSerializer):
    runs = serializers.ListField(child=serializers.DictField(), help_text="Each run with its one-time `token`.")


class ExperimentUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    name = StrictCharField(max_length=200, required=False)
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True)
    config = BoundedJSONField(required=False, object_only=True)

    def validate_name(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send at least one of name, description, config.")
        return attrs


class MemberSerializer(StrictFieldsMixin, serializers.Serializer):
    username = StrictCharField(max_length=150)
    role = serializers.ChoiceField(choices=[Role.OPERATOR, Role.VIEWER])


class MemberBodySerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    created_at = serializers.DateTimeField()


class BulkExperimentActionSerializer(StrictFieldsMixin, serializers.Serializer):
    action = serializers.ChoiceField(choices=["start", "stop", "delete"])
    ids = serializers.ListField(child=StrictCharField(max_length=64), min_length=1, max_length=100)


class BulkResultSerializer(serializers.Serializer):
    id = serializers.CharField()
    ok = serializers.BooleanField()
    status = serializers.CharField(required=False)
    error = serializers.CharField(required=False)


class BulkResultsSerializer(serializers.Serializer):
    results = BulkResultSerializer(many=True)


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A JSON or YAML spec, at most 1 MiB.")


class AuthTokenRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=4096, trim_whitespace=False)
