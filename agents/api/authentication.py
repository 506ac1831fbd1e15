"""Run tokens: ``Authorization: Bearer <token>`` authenticates an agent for its own run.

``request.user`` becomes a ``RunAgent`` (authenticated, not staff, not a Django user)
and ``request.auth`` the run, so throttling and permissions can tell agents from users.
"""

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from agents.tokens import run_for_token


class RunAgent:
    """The principal of a request made with a run token."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_active = True
    pk = None

    def __init__(self, run):
        self.run = run
        self.username = f"agent:{run.public_id}"

    def __str__(self) -> str:
        return self.username


def _bearer_token(value: bytes | str | None) -> str | None:
    if not value:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def run_from_authorization(value) -> object | None:
    """The run whose token this ``Authorization`` value carries, or None."""
    token = _bearer_token(value)
    return run_for_token(token) if token else None


class RunTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        raw = get_authorization_header(request)
        token = _bearer_token(raw)
        if token is None:
            return None
        if not token or " " in token:
            raise AuthenticationFailed("Invalid Bearer header: send 'Bearer <run token>'.")
        run = run_for_token(token)
        if run is None:
            raise AuthenticationFailed("Invalid or revoked run token.")
        return RunAgent(run), run

    def authenticate_header(self, request):
        return 'Bearer realm="research-agents"'
