"""The agent's reporting endpoints: ``POST agents/{run_id}/<report>`` with the run token.

Each view authenticates the run token, checks it belongs to this run, and hands the body
to ``agents.reports.handle_report`` (the agent socket uses the same function).
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api.authentication import RunAgent, RunTokenAuthentication
from agents.api.serializers import RunSerializer
from agents.models import AgentRun, LogLine
from agents.reports import SERIALIZERS, handle_report
from experiments.api.authentication import UserTokenAuthentication
from experiments.api.pagination import PageNumberPagination
from experiments.api.permissions import ACTION_ROLES, require_role
from experiments.api.schema import error_responses
from experiments.models import Experiment
from experiments.timestamps import format_timestamp

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="A repeat with the same key and body returns the first response and changes nothing.",
)
Accepted = inline_serializer("Accepted", {"accepted": serializers.IntegerField()})
PointSerializer = inline_serializer(
    "MetricPointIn",
    {
        "name": serializers.CharField(max_length=200),
        "value": serializers.FloatField(),
        "step": serializers.IntegerField(required=False),
        "timestamp": serializers.DateTimeField(required=False),
    },
)
MetricsReport = inline_serializer(
    "MetricsReport", {"points": serializers.ListField(child=PointSerializer, max_length=1000)}
)
LogLineSerializer = inline_serializer(
    "LogLineIn",
    {
        "level": serializers.ChoiceField(choices=["debug", "info", "warning", "error", "critical"]),
        "message": serializers.CharField(),
        "timestamp": serializers.DateTimeField(required=False),
    },
)
LogsReport = inline_serializer("LogsReport", {"lines": serializers.ListField(child=LogLineSerializer, max_length=1000)})
LogPage = inline_serializer(
    "LogPage",
    {
        "count": serializers.IntegerField(),
        "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True),
        "results": serializers.ListField(child=serializers.DictField()),
    },
)

REPORT_ERRORS = error_responses(400, 401, 403, 404, 406, 409, 413, 415, 422, 429)  # 403: a user token, not the run's


class ReportView(APIView):
    """Base: the caller must hold this run's token."""

    kind = ""
    authentication_classes = [RunTokenAuthentication, UserTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]

    def run_for_agent(self, request, run_id: str) -> AgentRun:
        run = request.auth if isinstance(request.auth, AgentRun) else None
        if run is None:
            raise PermissionDenied("Reports are sent with the run's own token (Authorization: Bearer).")
        if run.public_id != run_id:
            raise NotFound("Not found.")
        return run

    def post(self, request, run_id: str):
        run = self.run_for_agent(request, run_id)
        status, body = handle_report(
            run=run, kind=self.kind, data=request.data, idempotency_key=request.headers.get("Idempotency-Key")
        )
        return Response(body, status=status)


def _report_schema(kind: str, request, response, summary: str):
    return extend_schema(
        summary=summary,
        request=request,
        responses={200: response, **REPORT_ERRORS},
        parameters=[IDEMPOTENCY_HEADER],
    )


class ProgressView(ReportView):
    kind = "progress"

    @_report_schema("progress", SERIALIZERS["progress"], RunSerializer, "Report progress (0-100), action, metrics")
    def post(self, request, run_id):
        return super().post(request, run_id)


class MetricsView(ReportView):
    kind = "metrics"

    @_report_schema("metrics", MetricsReport, Accepted, "Report up to 1,000 metric points")
    def post(self, request, run_id):
        return super().post(request, run_id)


class LogsView(ReportView):
    kind = "logs"

    @_report_schema("logs", LogsReport, Accepted, "Append up to 1,000 log lines")
    def post(self, request, run_id):
        return super().post(request, run_id)

    @extend_schema(
        summary="The run's log lines, oldest first (the run's agent or any member)",
        parameters=[
            OpenApiParameter("level", str, enum=["debug", "info", "warning", "error", "critical"]),
            OpenApiParameter("after", int, description="Only lines with a larger id."),
        ],
        responses={200: LogPage, **error_responses(400, 401, 404, 406, 429)},
    )
    def get(self, request, run_id):
        if isinstance(request.user, RunAgent):
            run = self.run_for_agent(request, run_id)
        else:
            run = (
                AgentRun.objects.select_related("experiment")
                .filter(public_id=run_id, experiment__in=Experiment.objects.visible_to(request.user))
                .first()
            )
            if run is None:
                raise NotFound("Not found.")
            require_role(run.experiment, request.user, ACTION_ROLES["view"])
        lines = LogLine.objects.filter(run=run).order_by("id")
        level = request.query_params.get("level")
        if level:
            if level not in ("debug", "info", "warning", "error", "critical"):
                raise ValidationError({"level": ["One of: debug, info, warning, error, critical."]})
            lines = lines.filter(level=level)
        after = request.query_params.get("after")
        if after:
            if not after.isdigit():
                raise ValidationError({"after": ["A whole number ≥ 0 is required."]})
            lines = lines.filter(id__gt=int(after))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(lines.values("id", "level", "message", "timestamp"), request, view=self)
        for line in page:
            line["timestamp"] = format_timestamp(line["timestamp"])
        return paginator.get_paginated_response(page)


class PlanView(ReportView):
    kind = "plan"

    @_report_schema("plan", SERIALIZERS["plan"], RunSerializer, "Submit a plan; the run awaits approval")
    def post(self, request, run_id):
        return super().post(request, run_id)


class ValidationView(ReportView):
    kind = "validation"

    @_report_schema("validation", SERIALIZERS["validation"], RunSerializer, "Report a validation result")
    def post(self, request, run_id):
        return super().post(request, run_id)


class CompleteView(ReportView):
    kind = "complete"

    @_report_schema("complete", SERIALIZERS["complete"], RunSerializer, "Complete the run with its result")
    def post(self, request, run_id):
        return super().post(request, run_id)


class FailView(ReportView):
    kind = "fail"

    @_report_schema("fail", SERIALIZERS["fail"], RunSerializer, "Fail the run with an error")
    def post(self, request, run_id):
        return super().post(request, run_id)


REPORT_VIEWS = {
    "progress": ProgressView,
    "metrics": MetricsView,
    "logs": LogsView,
    "plan": PlanView,
    "validation": ValidationView,
    "complete": CompleteView,
    "fail": FailView,
}
