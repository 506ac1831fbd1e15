"""Rate limits per signed-in user, per anonymous IP and per run token.

A sliding-window counter in the shared cache (Redis when ``REDIS_URL`` is set): two
integer keys per client, the current and the previous minute, weighted by how much of
the previous minute still lies in the window. That is one ``INCR`` a request, instead of
DRF's list of timestamps per client, and it smooths the burst a fixed window allows at
its edge. Rates come from the runtime config, so a change applies at once.
"""

import contextlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from experiments import runtime_config

WINDOW_SECONDS = 60


def client_ip(request) -> str:
    """The client address, trusting ``X-Forwarded-For`` only through our own proxies."""
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    # Each trusted proxy appended one entry; the client is the one the outermost added.
    if len(forwarded) >= hops:
        return forwarded[-hops]
    return forwarded[0] if forwarded else remote


def _incr(key: str) -> int:
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2 + 5)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=WINDOW_SECONDS * 2 + 5)
        return 1


def identify(request) -> tuple[str, str, int]:
    """(scope, identity, requests a minute) for this request."""
    from agents.models import AgentRun

    config = runtime_config.get_config()
    if isinstance(getattr(request, "auth", None), AgentRun):
        return "agent", request.auth.public_id, config["agent_rate_per_minute"]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return "user", str(user.pk), config["user_rate_per_minute"]
    return "anon", client_ip(request), config["anon_rate_per_minute"]


class ResearchRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        scope, ident, limit = identify(request)
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        elapsed = now - window * WINDOW_SECONDS
        base = f"throttle:{scope}:{ident}:"
        previous = cache.get(base + str(window - 1), 0)
        current = _incr(base + str(window))
        weight = 1 - elapsed / WINDOW_SECONDS
        if previous * weight + current <= limit:
            return True
        # A refused request does not count against the client.
        with contextlib.suppress(ValueError):
            cache.decr(base + str(window))
        self._wait = self._seconds_until_allowed(previous, current, limit, elapsed)
        return False

    @staticmethod
    def _seconds_until_allowed(previous: int, current: int, limit: int, elapsed: float) -> float:
        if current <= limit and previous > 0:
            # Within this window, once enough of the previous one has slid out.
            needed = WINDOW_SECONDS * (1 - (limit - current + 1) / previous) - elapsed
            return max(1.0, math.ceil(needed))
        # This window alone is over the limit: wait into the next one.
        rest = WINDOW_SECONDS - elapsed
        return max(1.0, math.ceil(rest + WINDOW_SECONDS * max(0.0, 1 - limit / max(current, 1))))

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
