"""Agent runs over REST for operators: list, detail, stop, retry, token re-issue.

The agent's own reports are in ``agents/api/reporting.py``. An agent may also read its
own run here with its run token (``GET agents/{run_id}``): that is how the agent client
learns a plan decision when its socket is down. Nothing else here takes a run token.
"""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from agents import approval, lifecycle
from agents.api.authentication import RunAgent, RunTokenAuthentication
from agents.api.filters import RunFilter
from agents.api.serializers import (
    ApprovalSerializer,
    BulkRunActionSerializer,
    RunSerializer,
    RunWithTokenSerializer,
    TokenSerializer,
    run_representation,
)
from agents.models import AgentRun
from experiments.api.authentication import UserTokenAuthentication
from experiments.api.permissions import ACTION_ROLES, require_role, role_allows
from experiments.api.schema import error_responses
from experiments.api.serializers import BulkResultsSerializer
from experiments.errors import ConflictError
from experiments.ids import id_pattern
from experiments.models import Experiment


def runs_for(user):
    """The runs of the experiments ``user`` may see.

    The visible experiments are read first and passed as literal ids: with one experiment
    (the common case) PostgreSQL then walks the (experiment, created_at, id) index in order
    and reads only the page, instead of sorting every run of a subquery's experiments.
    """
    runs = AgentRun.objects.select_related("experiment", "retry_of")
    if isinstance(user, RunAgent):
        return runs.filter(pk=user.run.pk)
    if user.is_staff and user.is_active:
        return runs
    return runs.filter(experiment_id__in=list(Experiment.objects.visible_to(user).values_list("pk", flat=True)))


@extend_schema_view(
    list=extend_schema(
        summary="List the runs of the experiments you may see",
        responses={200: RunSerializer(many=True), **error_responses(400, 401, 404, 406, 429)},
    ),
    retrieve=extend_schema(summary="One run", responses={200: RunSerializer, **error_responses(401, 404, 406, 429)}),
)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RunSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "run_id"
    # Only id-shaped values reach the database; anything else is the catch-all's 404.
    lookup_value_regex = id_pattern("run")
    filter_backends = [DjangoFilterBackend]
    filterset_class = RunFilter
    # The user token first: its WWW-Authenticate header makes "no credentials" a 401.
    authentication_classes = [UserTokenAuthentication, SessionAuthentication, RunTokenAuthentication]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if isinstance(request.user, RunAgent) and self.action != "retrieve":
            raise PermissionDenied("A run token may only read its own run; operators act with a user token.")

    def get_queryset(self):
        return runs_for(self.request.user).order_by("created_at", "id")

    def filter_queryset(self, queryset):
        # The filters narrow the list; one run and its actions ignore them (see experiments).
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_object(self):
        run = super().get_object()
        # A plan past its deadline times out before anyone reads it as still waiting.
        if approval.expire_if_overdue(run=run):
            run = self.get_queryset().get(pk=run.pk)
        return run

    def _run_for(self, minimum: str) -> AgentRun:
        run = self.get_object()
        require_role(run.experiment, self.request.user, minimum)
        return run

    def _body(self, run: AgentRun, code=status.HTTP_200_OK) -> Response:
        run = self.get_queryset().get(pk=run.pk)
        return Response(run_representation(run), status=code)

    @extend_schema(
        summary="Stop a run; its agent is told at once",
        request=None,
        responses={200: RunSerializer, **error_responses(401, 403, 404, 406, 409, 429)},
    )
    @action(detail=True, methods=["post"])
    def stop(self, request, run_id=None):
        run = self._run_for(ACTION_ROLES["stop_run"])
        lifecycle.stop_run(run=run, by=request.user)
        return self._body(run)

    @extend_schema(
        summary="Retry a failed or stopped run as attempt n+1",
        request=None,
        responses={201: RunWithTokenSerializer, **error_responses(401, 403, 404, 406, 409, 429)},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, run_id=None):
        run = self._run_for(ACTION_ROLES["retry_run"])
        new_run, token = lifecycle.retry_run(run=run, by=request.user)
        new_run = self.get_queryset().get(pk=new_run.pk)
        return Response(RunWithTokenSerializer((new_run, token)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Issue a new run token; the old one stops working at once",
        request=None,
        responses={200: TokenSerializer, **error_responses(401, 403, 404, 406, 429)},
    )
    @action(detail=True, methods=["post"])
    def token(self, request, run_id=None):
        run = self._run_for(ACTION_ROLES["reissue_token"])
        return Response({"token": lifecycle.reissue_token(run=run, by=request.user)})

    @extend_schema(
        summary="Approve, reject, or reject for revision the plan a run awaits approval for",
        request=ApprovalSerializer,
        responses={200: RunSerializer, **error_responses(400, 401, 403, 404, 406, 409, 429)},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, run_id=None):
        run = self._run_for(ACTION_ROLES["approve"])
        serializer = ApprovalSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval.decide_plan(run=run, by=request.user, **serializer.validated_data)
        return self._body(run)

    @extend_schema(
        summary="Stop several runs; each id succeeds or fails alone",
        request=BulkRunActionSerializer,
        responses={200: BulkResultsSerializer, **error_responses(400, 401, 406, 429)},
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        serializer = BulkRunActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = [self._stop_one(run_id) for run_id in serializer.validated_data["run_ids"]]
        return Response({"results": results})

    def _stop_one(self, run_id: str) -> dict:
        run = runs_for(self.request.user).filter(public_id=run_id).first()
        if run is None:
            return {"id": run_id, "ok": False, "error": "not_found"}
        if not role_allows(run.experiment.role_of(self.request.user), ACTION_ROLES["stop_run"]):
            return {"id": run_id, "ok": False, "error": "permission_denied"}
        try:
            run = lifecycle.stop_run(run=run, by=self.request.user)
        except ConflictError as exc:
            return {"id": run_id, "ok": False, "error": "conflict", "detail": exc.detail}
        return {"id": run_id, "ok": True, "status": run.status}
