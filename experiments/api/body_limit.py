"""ASGI middleware: refuse oversized HTTP bodies with 413 before anything reads them.

Django's ASGI handler spools a whole body to memory or disk before any view runs, so a
multi-gigabyte upload would be read in full just to be refused. This answers 413 in the
error envelope as soon as ``Content-Length`` or the bytes received pass the limit.
"""

import json

from django.conf import settings


def _too_large_body(limit: int) -> bytes:
    return json.dumps(
        {"error": "payload_too_large", "detail": f"The request body is larger than {limit} bytes."}
    ).encode()


class BodyLimitMiddleware:
    def __init__(self, app, limit: int | None = None):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit or settings.MAX_REQUEST_BODY_BYTES
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    return await self._refuse(send, limit)
        received = 0
        refused = False

        async def limited_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    # Tell Django the client went away; we answer 413 ourselves.
                    return {"type": "http.disconnect"}
            return message

        sent_start = False

        async def tracking_send(message):
            nonlocal sent_start
            if message["type"] == "http.response.start":
                sent_start = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if refused and not sent_start:
            await self._refuse(send, limit)
        return None

    @staticmethod
    async def _refuse(send, limit: int) -> None:
        body = _too_large_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
