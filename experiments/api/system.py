"""Auth tokens, status, health, runtime config and the command endpoint."""

from django.contrib.auth import authenticate
from django.http import JsonResponse
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, NotFound, ValidationError
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.api.serializers import run_representation
from experiments import commands, runtime_config, system
from experiments.api.errors import envelope
from experiments.api.permissions import ACTION_ROLES, require_role
from experiments.api.schema import error_responses
from experiments.api.serializers import AuthTokenRequestSerializer, experiment_representation

TokenResponse = inline_serializer("TokenResponse", {"token": serializers.CharField()})


class AuthTokenView(APIView):
    """``POST`` exchanges a username and password for the user's API token; ``DELETE``
    revokes the caller's token."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        summary="Get your API token (send it as `Authorization: Token <key>`)",
        request=AuthTokenRequestSerializer,
        responses={200: TokenResponse, **error_responses(400, 401, 406, 429)},
        auth=[],
    )
    def post(self, request):
        serializer = AuthTokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise AuthenticationFailed("Wrong username or password.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(
        summary="Revoke your API token (it stops working at once)",
        request=None,
        responses={204: None, **error_responses(401, 406, 429)},
    )
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


StatusResponse = inline_serializer(
    "Status",
    {
        "database": serializers.DictField(),
        "channel_layer": serializers.DictField(),
        "version": serializers.CharField(),
        "uptime_seconds": serializers.FloatField(),
        "connections": serializers.IntegerField(allow_null=True),
        "experiments": serializers.DictField(child=serializers.IntegerField()),
    },
)


class StatusView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Database and channel-layer health, uptime, live sockets, experiments by status",
        responses={200: StatusResponse, **error_responses(401, 406, 429)},
    )
    def get(self, request):
        return Response(system.build_status(request.user))


ConfigBody = inline_serializer(
    "RuntimeConfig",
    {
        name: serializers.IntegerField(help_text=key.help, min_value=key.minimum, max_value=key.maximum, required=False)
        for name, key in runtime_config.KEYS.items()
    },
)


class ConfigView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="The runtime settings (staff)",
        responses={200: ConfigBody, **error_responses(401, 403, 406, 429)},
    )
    def get(self, request):
        return Response(runtime_config.get_config())

    @extend_schema(
        summary="Change some runtime settings (staff); effective at once in every process",
        request=ConfigBody,
        responses={200: ConfigBody, **error_responses(400, 401, 403, 406, 429)},
    )
    def post(self, request):
        clean, errors = runtime_config.validate(request.data)
        if errors:
            raise ValidationError(errors)
        return Response(runtime_config.update_config(changes=clean, by=request.user))


CommandRequest = inline_serializer("CommandRequest", {"command": serializers.CharField()})
CommandResponse = inline_serializer(
    "CommandResponse",
    {
        "action": serializers.CharField(),
        "target": serializers.CharField(allow_null=True),
        "result": serializers.JSONField(),
    },
)


class CommandView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Run an operator command: status | start/stop <exp_id> | approve/reject <run_id> [feedback]",
        request=CommandRequest,
        responses={200: CommandResponse, **error_responses(400, 401, 403, 404, 406, 409, 429)},
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        unknown = sorted(set(data) - {"command"})
        if unknown:
            raise ValidationError({name: ["Unknown field."] for name in unknown})
        try:
            command = commands.parse(data.get("command"))
        except commands.CommandError as exc:
            return Response(envelope(400, str(exc), code="bad_request"), status=400)
        user = request.user
        if command.action == "status":
            result = system.build_status(user)
        elif command.action in ("start", "stop"):
            experiment = commands.find_experiment(user, command.target)
            if experiment is None:
                raise NotFound("Not found.")
            require_role(experiment, user, ACTION_ROLES[command.action])
            experiment = commands.run_experiment_command(command, experiment, user)
            result = experiment_representation(experiment, include_runs=False)
        else:
            run = commands.find_run(user, command.target)
            if run is None:
                raise NotFound("Not found.")
            require_role(run.experiment, user, ACTION_ROLES["approve"])
            run = commands.run_plan_command(command, run, user)
            result = run_representation(run)
        return Response({"action": command.action, "target": command.target, "result": result})


@require_safe
def health(request):
    """For probes: no auth, no throttle; 503 when the database does not answer."""
    database = system.database_check()
    if not database["ok"]:
        body = envelope(503, "The database does not answer.")
        body["database"] = database
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "database": database, "version": system.settings.RESEARCH_ENGINE_VERSION})
