"""Django's ASGI handler, with the middleware chain and the view run in one thread hop.

Under ASGI, Django runs its middleware in async mode, and a ``MiddlewareMixin``
middleware (sessions, CSRF, auth, messages, common, security, …) then hops to a thread
for each ``process_request`` and ``process_response``: about sixteen hops for one request,
about half of a 11 ms ``/health`` on this project's two-core machine, before the
(synchronous) DRF view hops once more. Every middleware and every view here is
synchronous, so this handler loads the chain in sync mode and runs request → middleware →
view → response in a single hop, to the same per-request thread Django uses for the
request's database connection (opened, and closed at the end, there). Responses whose
bodies are async iterators (exports) still stream on the event loop.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> SyncChainASGIHandler:
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
