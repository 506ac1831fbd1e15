"""User authentication for the API: ``Authorization: Token <key>`` and the session.

Run tokens (``Authorization: Bearer``) authenticate agents, not users; they are handled
by ``agents/api/authentication.py`` on the reporting endpoints only.
"""

from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token


class UserTokenAuthentication(TokenAuthentication):
    keyword = "Token"


def user_for_token_key(key: str):
    """The active user owning this API token, or None (used by the socket auth)."""
    if not key or len(key) > 100:
        return None
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user
