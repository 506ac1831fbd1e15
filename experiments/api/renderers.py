"""JSON out with orjson: a 1 MB results body renders in a few milliseconds instead of
tens. Pre-rendered fragments (``orjson.Fragment``, e.g. cached metric series) are embedded
as they are."""

from decimal import Decimal

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import JSONRenderer


def _default(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Promise):  # lazy translations
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(data) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        indent = self.get_indent(accepted_media_type, renderer_context or {})
        if indent:
            return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2)
        return dumps(data)
