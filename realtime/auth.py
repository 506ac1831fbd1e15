"""Who is on a socket, and whether their page may open it at all.

``OriginCheckMiddleware`` refuses, at the handshake (403), a connection whose ``Origin``
is foreign: neither the host the request came to nor listed in ``CORS_ALLOWED_ORIGINS``.
A connection without ``Origin`` is not a browser page (an agent, a script) and goes on to
authentication like any other. Channels' ``AllowedHostsOriginValidator`` refuses a
missing Origin, which would lock out every non-browser client, so it is not used.

``SocketAuthMiddleware`` resolves ``scope["user"]`` from, in this order, a single-use
``?ticket=``, an ``Authorization: Token <key>`` header, or the session cookie. A socket
that presents a ticket or a token that does not work is anonymous even if it also has a
session: explicit credentials that fail are never silently replaced. Consumers accept an
anonymous socket and close it with 4401, so the client sees why.
"""

from importlib import import_module
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host

from experiments.api.authentication import user_for_token_key
from realtime.tickets import consume_ticket


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def query_param(scope, name: str) -> str | None:
    """The first value of a query parameter; ``""`` when present but blank (``?since=``)."""
    query = scope.get("query_string", b"").decode("latin-1")
    values = parse_qs(query, keep_blank_values=True).get(name)
    return values[0] if values else None


def origin_allowed(scope) -> bool:
    """No Origin, an origin in ``CORS_ALLOWED_ORIGINS``, or the site's own host.

    "Own host" is the ``Host`` the request came to, and only when that host is one the
    site answers to (``ALLOWED_HOSTS``): a page on a rebound DNS name sends matching
    Origin and Host headers, and is still foreign.
    """
    origin = header(scope, b"origin")
    if origin is None:
        return True
    origin = origin.strip().rstrip("/")
    if origin in settings.CORS_ALLOWED_ORIGINS:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" and other opaque origins are foreign
    host = (header(scope, b"host") or "").strip().lower()
    if not host or parts.netloc.lower() != host:
        return False
    domain, _port = split_domain_port(host)
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


class OriginCheckMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            # Closing before accepting makes daphne answer the handshake with 403.
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 4403})
            return None
        return await self.app(scope, receive, send)


@database_sync_to_async
def _user_from_ticket(ticket: str):
    return consume_ticket(ticket)


@database_sync_to_async
def _user_from_token(key: str):
    return user_for_token_key(key)


async def resolve_user(scope):
    ticket = query_param(scope, "ticket")
    if ticket is not None:
        return await _user_from_ticket(ticket) or AnonymousUser()
    authorization = header(scope, b"authorization")
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "token":
            return await _user_from_token(credentials.strip()) or AnonymousUser()
        if scheme.lower() == "bearer":
            # A run token: it authenticates an agent on its own socket, not a user.
            return AnonymousUser()
    session = scope.get("session") or session_from_cookie(scope)
    if session is not None:
        user = await get_user({**scope, "session": session})
        if user is not None and user.is_authenticated and user.is_active:
            return user
    return AnonymousUser()


def session_from_cookie(scope):
    """The Django session named by the request's cookie (loaded lazily), or None.

    Read here rather than through Channels' ``SessionMiddleware``, which wraps ``send``
    to save sessions: the consumers need daphne's own ``send`` for flow control and the
    fast path (``realtime/outbox.py``), and never write to the session.
    """
    cookie = header(scope, b"cookie")
    if not cookie:
        return None
    key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)


class SocketAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["user"] = await resolve_user(scope)
        return await super().__call__(scope, receive, send)
