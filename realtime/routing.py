"""WebSocket routes, behind the origin check and socket authentication.

No Channels session middleware: it wraps ``send``, and the consumers need daphne's own
(realtime/outbox.py). ``SocketAuthMiddleware`` reads the session cookie itself.
"""

from channels.routing import URLRouter
from django.urls import re_path

from realtime.auth import OriginCheckMiddleware, SocketAuthMiddleware
from realtime.consumers import AgentConsumer, DashboardConsumer


async def unknown_path(scope, receive, send):
    """Any other WebSocket path: refused at the handshake (403)."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 4404})


websocket_urlpatterns = [
    re_path(r"^ws/research/?$", DashboardConsumer.as_asgi()),
    re_path(r"^ws/research/experiments/(?P<experiment_id>[^/]+)/?$", DashboardConsumer.as_asgi()),
    re_path(r"^ws/research/agents/(?P<run_id>[^/]+)/?$", AgentConsumer.as_asgi()),
    re_path(r"", unknown_path),
]

websocket_application = OriginCheckMiddleware(SocketAuthMiddleware(URLRouter(websocket_urlpatterns)))
