"""Experiments over REST: translation between HTTP and ``experiments/lifecycle.py``.

Views validate with a serializer, check the caller's role, call one service and render
the result; no rule about experiments lives here.
"""

from django.db.models import Prefetch
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters as drf_filters
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from agents.api.serializers import RunSpecSerializer, RunWithTokenSerializer
from agents.models import AgentRun
from experiments import lifecycle, membership
from experiments.api.exceptions import PayloadTooLarge
from experiments.api.filters import ExperimentFilter, StrictOrderingFilter
from experiments.api.permissions import ACTION_ROLES, require_role, role_allows
from experiments.api.schema import error_responses
from experiments.api.serializers import (
    BulkExperimentActionSerializer,
    BulkResultsSerializer,
    ExperimentCreatedSerializer,
    ExperimentCreateSerializer,
    ExperimentSerializer,
    ExperimentUpdateSerializer,
    ImportSerializer,
    MemberBodySerializer,
    MemberSerializer,
    experiment_representation,
)
from experiments.errors import ConflictError
from experiments.ids import id_pattern
from experiments.models import Experiment, Membership, Role
from experiments.spec import SpecError, parse_spec
from experiments.timestamps import format_timestamp

IMPORT_MAX_BYTES = 1024 * 1024


def experiments_for(user):
    """The caller's experiments with what their bodies need, in a fixed number of queries."""
    runs = AgentRun.objects.select_related("retry_of").order_by("created_at", "id")
    return (
        Experiment.objects.visible_to(user)
        .select_related("created_by")
        .prefetch_related(Prefetch("runs", queryset=runs))
    )


def roles_for(user, experiments) -> dict[int, str]:
    if user.is_staff:
        return {e.pk: Role.OWNER for e in experiments}
    return dict(
        Membership.objects.filter(user=user, experiment__in=[e.pk for e in experiments]).values_list(
            "experiment_id", "role"
        )
    )


def created_body(experiment: Experiment, issued, role: str) -> dict:
    body = experiment_representation(experiment, runs=[i.run for i in issued], role=role)
    body["runs"] = [RunWithTokenSerializer((i.run, i.token)).data for i in issued]
    return body


@extend_schema_view(
    list=extend_schema(
        summary="List the experiments you may see",
        responses={200: ExperimentSerializer(many=True), **error_responses(400, 401, 404, 406, 429)},
    ),
    retrieve=extend_schema(
        summary="One experiment with its runs",
        responses={200: ExperimentSerializer, **error_responses(401, 404, 406, 429)},
    ),
)
class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ExperimentSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    # Only id-shaped values reach the database (a NUL in a lookup is a PostgreSQL error);
    # anything else is the catch-all's 404.
    lookup_value_regex = id_pattern("exp")
    filterset_class = ExperimentFilter
    filter_backends = [
        DjangoFilterBackend,
        drf_filters.SearchFilter,
        StrictOrderingFilter,
    ]
    search_fields = ["name", "description"]
    ordering_fields = ["created_at", "updated_at", "started_at", "completed_at", "name", "status"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return experiments_for(self.request.user)

    def filter_queryset(self, queryset):
        # Filters, search and ordering narrow the list; on one experiment and its actions
        # (where DRF's get_object would apply them too) they would only turn a stray
        # query parameter into a 404 or 400.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["include_runs"] = self.action != "list"
        return context

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        context = {**self.get_serializer_context(), "roles": roles_for(request.user, page)}
        data = ExperimentSerializer(page, many=True, context=context).data
        return self.get_paginated_response(data)

    def _body(self, experiment: Experiment, code=status.HTTP_200_OK) -> Response:
        experiment = self.get_queryset().get(pk=experiment.pk)
        return Response(ExperimentSerializer(experiment, context=self.get_serializer_context()).data, status=code)

    def _experiment_for(self, minimum: str) -> Experiment:
        experiment = self.get_object()
        require_role(experiment, self.request.user, minimum)
        return experiment

    @extend_schema(
        summary="Create an experiment with its agents",
        request=ExperimentCreateSerializer,
        responses={201: ExperimentCreatedSerializer, **error_responses(400, 401, 406, 413, 415, 429)},
    )
    def create(self, request, *args, **kwargs):
        serializer = ExperimentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._create_from(serializer.validated_data)

    def _create_from(self, spec: dict) -> Response:
        experiment, issued = lifecycle.create_experiment(
            name=spec["name"],
            description=spec.get("description", ""),
            config=spec.get("config") or {},
            agents=[lifecycle.RunSpec(**agent) for agent in spec.get("agents", [])],
            by=self.request.user,
        )
        return Response(created_body(experiment, issued, Role.OWNER), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change name, description (any status) or config (before the start)",
        request=ExperimentUpdateSerializer,
        responses={200: ExperimentSerializer, **error_responses(400, 401, 403, 404, 406, 409, 429)},
    )
    def partial_update(self, request, *args, **kwargs):
        experiment = self._experiment_for(ACTION_ROLES["edit"])
        serializer = ExperimentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.update_experiment(experiment=experiment, by=request.user, **serializer.validated_data)
        return self._body(experiment)

    @extend_schema(
        summary="Delete an experiment (not while running)",
        responses={204: None, **error_responses(401, 403, 404, 406, 409, 429)},
    )
    def destroy(self, request, *args, **kwargs):
        experiment = self._experiment_for(ACTION_ROLES["delete"])
        lifecycle.delete_experiment(experiment=experiment, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Start: every pending run becomes starting",
        request=None,
        responses={200: ExperimentSerializer, **error_responses(401, 403, 404, 406, 409, 429)},
    )
    @action(detail=True, methods=["post"])
    def start(self, request, id=None):
        experiment = self._experiment_for(ACTION_ROLES["start"])
        lifecycle.start_experiment(experiment=experiment, by=request.user)
        return self._body(experiment)

    @extend_schema(
        summary="Stop: every unfinished run is stopped",
        request=None,
        responses={200: ExperimentSerializer, **error_responses(401, 403, 404, 406, 409, 429)},
    )
    @action(detail=True, methods=["post"])
    def stop(self, request, id=None):
        experiment = self._experiment_for(ACTION_ROLES["stop"])
        lifecycle.stop_experiment(experiment=experiment, by=request.user)
        return self._body(experiment)

    @extend_schema(
        summary="Add an agent run (before the start)",
        request=RunSpecSerializer,
        responses={201: RunWithTokenSerializer, **error_responses(400, 401, 403, 404, 406, 409, 429)},
    )
    @action(detail=True, methods=["post"], url_path="agents")
    def add_agent(self, request, id=None):
        experiment = self._experiment_for(ACTION_ROLES["add_run"])
        serializer = RunSpecSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = lifecycle.add_run(experiment=experiment, by=request.user, **serializer.validated_data)
        return Response(RunWithTokenSerializer((issued.run, issued.token)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        summary="The experiment's members and their roles (paginated, oldest first)",
        request=None,
        filters=False,
        responses={200: MemberBodySerializer(many=True), **error_responses(400, 401, 404, 406, 429)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a member (201) or change their role (200)",
        request=MemberSerializer,
        responses={
            200: MemberBodySerializer,
            201: MemberBodySerializer,
            **error_responses(400, 401, 403, 404, 406, 409, 429),
        },
    )
    @action(detail=True, methods=["get", "post"])
    def members(self, request, id=None):
        if request.method == "GET":
            experiment = self._experiment_for(ACTION_ROLES["view"])
            rows = experiment.memberships.select_related("user").order_by("created_at", "id")
            page = self.paginate_queryset(rows)
            return self.get_paginated_response([_member_body(m) for m in page])
        experiment = self._experiment_for(ACTION_ROLES["manage_members"])
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            member, created = membership.set_member(experiment=experiment, by=request.user, **serializer.validated_data)
        except membership.UnknownUser:
            raise ValidationError({"username": ["No active user with this username."]}) from None
        return Response(_member_body(member), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Remove a member (the owner cannot be removed: 409)",
        request=None,
        responses={204: None, **error_responses(401, 403, 404, 406, 409, 429)},
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<username>[\w.@+-]{1,150})")
    def remove_member(self, request, id=None, username=None):
        experiment = self._experiment_for(ACTION_ROLES["manage_members"])
        if not membership.remove_member(experiment=experiment, username=username, by=request.user):
            raise NotFound("This user is not a member of the experiment.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Create an experiment from a JSON or YAML spec file",
        request={"multipart/form-data": ImportSerializer},
        responses={201: ExperimentCreatedSerializer, **error_responses(400, 401, 406, 413, 415, 429)},
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_spec(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["Send the spec as a multipart field named file."]})
        if upload.size > IMPORT_MAX_BYTES:
            raise PayloadTooLarge(f"The spec file is {upload.size} bytes; the limit is 1 MiB.")
        try:
            raw = upload.read(IMPORT_MAX_BYTES + 1)
            spec = parse_spec(raw, upload.name or "")
        except SpecError as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        serializer = ExperimentCreateSerializer(data=spec)
        serializer.is_valid(raise_exception=True)
        return self._create_from(serializer.validated_data)

    @extend_schema(
        summary="Start, stop or delete several experiments; each id succeeds or fails alone",
        request=BulkExperimentActionSerializer,
        responses={200: BulkResultsSerializer, **error_responses(400, 401, 406, 429)},
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        serializer = BulkExperimentActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verb = serializer.validated_data["action"]
        results = [self._bulk_one(verb, public_id) for public_id in serializer.validated_data["ids"]]
        return Response({"results": results})

    def _bulk_one(self, verb: str, public_id: str) -> dict:
        experiment = Experiment.objects.visible_to(self.request.user).filter(public_id=public_id).first()
        if experiment is None:
            return {"id": public_id, "ok": False, "error": "not_found"}
        if not role_allows(experiment.role_of(self.request.user), ACTION_ROLES[verb]):
            return {"id": public_id, "ok": False, "error": "permission_denied"}
        service = {
            "start": lifecycle.start_experiment,
            "stop": lifecycle.stop_experiment,
            "delete": lifecycle.delete_experiment,
        }[verb]
        try:
            outcome = service(experiment=experiment, by=self.request.user)
        except ConflictError as exc:
            return {"id": public_id, "ok": False, "error": "conflict", "detail": exc.detail}
        if verb == "delete":
            return {"id": public_id, "ok": True, "status": "deleted"}
        return {"id": public_id, "ok": True, "status": outcome.status}


def _member_body(member: Membership) -> dict:
    return {
        "username": member.user.username,
        "role": member.role,
        "created_at": format_timestamp(member.created_at),
    }
