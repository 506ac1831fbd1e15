"""ASGI entry point: ``daphne research_site.asgi:application``.

HTTP goes to Django (its middleware and view in one thread hop, see
``experiments/api/handler.py``) behind the body-size limit; WebSockets go through the origin check
and the socket authentication to the consumers routed in ``realtime/routing.py``. The
per-process background work (event sweep, approval timeouts, presence) starts when
daphne's reactor runs, or with the first connection under another server. Under daphne,
request bodies are left to Django (``experiments/api/daphne_bodies.py``).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "research_site.settings")

from experiments.api.handler import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from experiments.api.body_limit import BodyLimitMiddleware  # noqa: E402
from experiments.api.daphne_bodies import leave_bodies_to_django  # noqa: E402
from realtime.background import StartBackgroundMiddleware, start_with_daphne  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

application = StartBackgroundMiddleware(
    ProtocolTypeRouter(
        {
            "http": BodyLimitMiddleware(django_asgi_app),
            "websocket": websocket_application,
        }
    )
)

start_with_daphne()
leave_bodies_to_django()
