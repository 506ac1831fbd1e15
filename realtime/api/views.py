"""Event history and WebSocket tickets over REST."""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments.api.schema import error_responses
from experiments.ids import looks_like
from experiments.models import Experiment
from experiments.timestamps import format_timestamp
from realtime.event_types import EVENT_TYPES
from realtime.models import Event
from realtime.store import event_payload
from realtime.tickets import issue_ticket


class EventSerializer(serializers.Serializer):
    type = serializers.CharField(default="event")
    id = serializers.IntegerField()
    seq = serializers.IntegerField(allow_null=True)
    event_type = serializers.ChoiceField(choices=sorted(EVENT_TYPES))
    experiment_id = serializers.CharField(allow_null=True)
    run_id = serializers.CharField(allow_null=True)
    data = serializers.JSONField()
    timestamp = serializers.DateTimeField()

    def to_representation(self, instance):
        return event_payload(instance)


def _int_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["A whole number is required."]}) from None
    if value < 0:
        raise ValidationError({name: ["Must be 0 or more."]})
    return value


@extend_schema(
    summary="The stored event history of the experiments you may see, oldest first",
    parameters=[
        OpenApiParameter("experiment", str, description="An experiment id (`exp_…`)."),
        OpenApiParameter("run", str, description="A run id (`run_…`)."),
        OpenApiParameter("event_type", str, enum=sorted(EVENT_TYPES)),
        OpenApiParameter(
            "since",
            int,
            description="Events after this: a `seq` with `experiment`, an event `id` without.",
        ),
    ],
    responses={200: EventSerializer(many=True), **error_responses(400, 401, 404, 406, 429)},
)
class EventListView(ListAPIView):
    serializer_class = EventSerializer

    def get_queryset(self):
        request = self.request
        params = request.query_params
        queryset = Event.objects.all()
        user = request.user
        if not user.is_staff:
            visible = Experiment.objects.visible_to(user).values("public_id")
            queryset = queryset.filter(Q(experiment_id__in=visible) | Q(experiment_id__isnull=True))
        experiment = params.get("experiment")
        run = params.get("run")
        event_type = params.get("event_type")
        since = _int_param(request, "since")
        if experiment:
            if not looks_like(experiment, "exp"):
                raise ValidationError({"experiment": ["Not an experiment id (exp_…)."]})
            queryset = queryset.filter(experiment_id=experiment)
        if run:
            if not looks_like(run, "run"):
                raise ValidationError({"run": ["Not a run id (run_…)."]})
            queryset = queryset.filter(run_id=run)
        if event_type:
            if event_type not in EVENT_TYPES:
                raise ValidationError({"event_type": [f"Unknown event type. Known: {', '.join(sorted(EVENT_TYPES))}."]})
            queryset = queryset.filter(event_type=event_type)
        if experiment:
            if since is not None:
                queryset = queryset.filter(seq__gt=since)
            return queryset.order_by("seq")
        if since is not None:
            queryset = queryset.filter(id__gt=since)
        return queryset.order_by("id")


TicketResponse = inline_serializer(
    "WsTicket", {"ticket": serializers.CharField(), "expires_at": serializers.DateTimeField()}
)


class WsTicketView(APIView):
    @extend_schema(
        summary="A single-use ticket for `?ticket=` on a socket URL, valid 30 s",
        request=None,
        responses={200: TicketResponse, **error_responses(401, 406, 429)},
    )
    def post(self, request):
        ticket, expires_at = issue_ticket(user=request.user)
        return Response({"ticket": ticket, "expires_at": format_timestamp(expires_at)})
