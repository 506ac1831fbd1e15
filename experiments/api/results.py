"""Results, metric series and exports of one experiment."""

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.metric_reads import experiment_metrics, metrics_version
from experiments import export
from experiments.api.fields import StrictFieldsMixin
from experiments.api.permissions import ACTION_ROLES, require_role
from experiments.api.renderers import FastJSONRenderer
from experiments.api.schema import error_responses
from experiments.ids import looks_like
from experiments.models import Experiment
from experiments.response_cache import cached_body
from experiments.results import experiment_results

MAX_POINTS_LIMIT = 10_000
DEFAULT_MAX_POINTS = 1000


def experiment_for(request, experiment_id: str, action: str) -> Experiment:
    experiment = (
        Experiment.objects.visible_to(request.user).select_related("created_by").filter(public_id=experiment_id).first()
    )
    if experiment is None:
        raise NotFound("Not found.")
    require_role(experiment, request.user, ACTION_ROLES[action])
    return experiment


ResultsBody = inline_serializer(
    "Results",
    {
        "as_of": serializers.DateTimeField(help_text="When computed: durations of unfinished runs run up to it."),
        "experiment": serializers.DictField(),
        "runs": serializers.ListField(child=serializers.DictField()),
        "summary": inline_serializer(
            "ResultsSummary",
            {
                "total_runs": serializers.IntegerField(),
                "attempts": serializers.IntegerField(),
                "by_status": serializers.DictField(child=serializers.IntegerField()),
                "total_tokens": serializers.IntegerField(),
                "total_cost": serializers.FloatField(),
                "duration_seconds": serializers.FloatField(allow_null=True),
                "validation": serializers.DictField(child=serializers.IntegerField()),
            },
        ),
    },
)


class ResultsView(APIView):
    @extend_schema(
        summary="Every run's outcome, final metrics, result and validation, with a summary",
        responses={200: ResultsBody, **error_responses(401, 404, 406, 429)},
    )
    def get(self, request, experiment_id):
        experiment = experiment_for(request, experiment_id, "view")
        return Response(cached_body(experiment, "results", (), lambda: experiment_results(experiment)))


MetricsBody = inline_serializer(
    "Metrics",
    {
        "experiment_id": serializers.CharField(),
        "max_points": serializers.IntegerField(),
        "downsampled": serializers.BooleanField(),
        "series": serializers.DictField(
            help_text="{run_id: {metric: [{step, value, timestamp}, …]}}, each at most max_points long."
        ),
        "summary": serializers.DictField(help_text="{run_id: {metric: {min, max, avg, last, count}}}"),
    },
)


class MetricsView(APIView):
    @extend_schema(
        summary="Metric series per run and metric (min/max downsampled) and their summaries",
        parameters=[
            OpenApiParameter("name", str, description="Only this metric."),
            OpenApiParameter("run", str, description="Only this run (`run_…`)."),
            OpenApiParameter("max_points", int, description=f"2-{MAX_POINTS_LIMIT}, default {DEFAULT_MAX_POINTS}."),
        ],
        responses={200: MetricsBody, **error_responses(400, 401, 404, 406, 429)},
    )
    def get(self, request, experiment_id):
        experiment = experiment_for(request, experiment_id, "view")
        params = request.query_params
        raw = params.get("max_points")
        if raw in (None, ""):
            max_points = DEFAULT_MAX_POINTS
        else:
            try:
                max_points = int(raw)
            except ValueError:
                raise ValidationError({"max_points": ["A whole number is required."]}) from None
            if not 2 <= max_points <= MAX_POINTS_LIMIT:
                raise ValidationError({"max_points": [f"Must be between 2 and {MAX_POINTS_LIMIT}."]})
        run_id = params.get("run") or None
        if run_id is not None and not looks_like(run_id, "run"):
            raise ValidationError({"run": ["Not a run id (run_…)."]})
        name = params.get("name") or None
        if name is not None and (len(name) > 200 or "\x00" in name):
            raise ValidationError({"name": ["At most 200 characters, without NUL."]})
        return Response(
            cached_body(
                experiment,
                "metrics",
                (name, run_id, max_points),
                lambda: experiment_metrics(experiment, name=name, run_id=run_id, max_points=max_points),
                version=lambda: metrics_version(experiment),
            )
        )


class ExportRequest(StrictFieldsMixin, serializers.Serializer):
    format = serializers.ChoiceField(choices=export.FORMATS)
    include = serializers.ListField(
        child=serializers.ChoiceField(choices=export.PARTS), required=False, allow_empty=False, max_length=4
    )

    def validate_include(self, value):
        return list(dict.fromkeys(value))


async def _stream(chunks):
    """Pull the synchronous generator one chunk at a time in the request's thread."""
    sentinel = object()
    while True:
        chunk = await sync_to_async(next, thread_sensitive=True)(chunks, sentinel)
        if chunk is sentinel:
            return
        yield chunk


class DownloadRenderer(FastJSONRenderer):
    """Lets ``Accept: text/csv`` (or NDJSON, or anything) reach the export; errors stay JSON."""

    media_type = "*/*"
    format = "download"


class ExportView(APIView):
    renderer_classes = [FastJSONRenderer, DownloadRenderer]

    @extend_schema(
        summary="Download the experiment as JSON, CSV or NDJSON (streamed, constant memory)",
        request=ExportRequest,
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT, description="One JSON document."),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.BINARY, description="One record a line."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="One table."),
            **error_responses(400, 401, 403, 404, 406, 429),
        },
    )
    def post(self, request, experiment_id):
        experiment = experiment_for(request, experiment_id, "export")
        serializer = ExportRequest(data=request.data)
        serializer.is_valid(raise_exception=True)
        fmt = serializer.validated_data["format"]
        include = export.parts_for(fmt, serializer.validated_data.get("include"))
        chunks = export.export_chunks(experiment, fmt, include)
        response = StreamingHttpResponse(_stream(chunks), content_type=export.CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{export.filename(experiment, fmt)}"'
        response["Cache-Control"] = "no-store"
        return response
