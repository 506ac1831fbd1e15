"""The error envelope: every 4xx/5xx JSON body is ``{"error", "detail"[, "fields"]}``.

DRF's exceptions go through ``exception_handler``; Django's own 400/403/404/500 pages and
the CSRF failure view answer the same envelope for API clients (``json_error_page``), and
an HTML page for browsers on the dashboard.
"""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from experiments.api.exceptions import Conflict, PayloadTooLarge, Unprocessable  # noqa: F401 (re-exported)
from experiments.errors import ConflictError

logger = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


def envelope(status_code: int, detail: str, *, code: str | None = None, fields=None) -> dict:
    body = {"error": code or STATUS_CODES.get(status_code, "error"), "detail": str(detail)}
    if fields is not None:
        body["fields"] = fields
    return body


def error_fields(value) -> list[str] | dict:
    """DRF's nested error details as lists of strings (dicts kept for nested objects)."""
    if isinstance(value, dict):
        return {str(k): error_fields(v) for k, v in value.items()}
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return [str(v) for v in value]
        # A list of nested objects (e.g. agents[2].name): keep positions that failed.
        return {str(i): error_fields(v) for i, v in enumerate(value) if v}
    return [str(value)]


def first_message(fields) -> str:
    if isinstance(fields, dict):
        for key, value in fields.items():
            inner = first_message(value)
            if inner:
                return inner if key == "non_field_errors" else f"{key}: {inner}"
    if isinstance(fields, list) and fields:
        return str(fields[0])
    return ""


def validation_body(detail) -> dict:
    """The 400 ``validation_error`` envelope for a DRF ``ValidationError.detail``."""
    fields = error_fields(detail)
    if not isinstance(fields, dict):
        fields = {"non_field_errors": fields}
    first = first_message(fields)
    text = f"Invalid input: {first}" if first else "Invalid input."
    return envelope(400, text, code="validation_error", fields=fields)


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*(exc.args))
    elif isinstance(exc, ConflictError):
        exc = Conflict(exc.detail)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("The request body is larger than the 1 MiB limit.")

    if not isinstance(exc, exceptions.APIException):
        # A bug. Log it with its traceback, and answer the envelope even with DEBUG on.
        request = context.get("request")
        logger.error(
            "Unhandled error in %s %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            exc_info=exc,
        )
        set_rollback()
        return Response(envelope(500, "Internal server error."), status=500)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))

    if isinstance(exc, exceptions.ValidationError):
        body = validation_body(exc.detail)
    else:
        code = STATUS_CODES.get(exc.status_code)
        detail = exc.detail if not isinstance(exc.detail, (list, dict)) else first_message(exc.detail)
        body = envelope(exc.status_code, detail, code=code or exc.default_code)

    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


# Django's own error views ----------------------------------------------------------------


def _wants_html(request) -> bool:
    accept = request.META.get("HTTP_ACCEPT", "")
    return not request.path.startswith("/api/") and request.path != "/health" and "text/html" in accept


def json_error_page(request, status_code: int, detail: str) -> HttpResponse:
    if _wants_html(request):
        html = render_to_string("error.html", {"status_code": status_code, "detail": detail}, request=request)
        return HttpResponse(html, status=status_code)
    return JsonResponse(envelope(status_code, detail), status=status_code)


def bad_request(request, exception=None):
    return json_error_page(request, 400, "Bad request.")


def permission_denied(request, exception=None):
    return json_error_page(request, 403, "You do not have permission to do this.")


def page_not_found(request, exception=None):
    return json_error_page(request, 404, "Not found.")


def server_error(request):
    return json_error_page(request, 500, "Internal server error.")


def not_found_catchall(request, path=""):
    """Last URL pattern: a 404 in the envelope even with DEBUG on (Django's debug page is
    HTML), after the redirect that ``APPEND_SLASH`` would have made."""
    from django.conf import settings
    from django.http import HttpResponsePermanentRedirect
    from django.urls import Resolver404, resolve

    if settings.APPEND_SLASH and request.method in ("GET", "HEAD") and not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not not_found_catchall:
            query = request.META.get("QUERY_STRING")
            return HttpResponsePermanentRedirect(request.path + "/" + (f"?{query}" if query else ""))
    return page_not_found(request)


def csrf_failure(request, reason=""):
    return json_error_page(request, 403, f"CSRF verification failed: {reason}")
