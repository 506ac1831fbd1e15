"""A JSON parser that holds request bodies to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (1 MiB).

DRF's parsers read the raw stream, bypassing Django's own body-size check, so without
this a body up to the ASGI limit would be parsed. Beyond the limit: 413.
"""

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from experiments.api.errors import PayloadTooLarge


class LimitedStream:
    def __init__(self, stream, limit: int):
        self._stream = stream
        self._limit = limit
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        allowed = self._limit + 1 - self._read
        chunk = self._stream.read(allowed if size is None or size < 0 else min(size, allowed))
        self._read += len(chunk)
        if self._read > self._limit:
            raise PayloadTooLarge(f"The request body is larger than {self._limit} bytes.")
        return chunk


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        bounded = LimitedStream(stream, limit) if stream is not None else None
        try:
            return super().parse(bounded, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
