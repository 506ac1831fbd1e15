"""System status: database and channel-layer round-trips, uptime, live sockets, counts.

The live socket count comes from ``realtime`` through ``experiments.providers``.
"""

import asyncio
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Count

from experiments import providers
from experiments.models import Experiment, ExperimentStatus

PROCESS_STARTED = time.monotonic()
LAYER_TIMEOUT_SECONDS = 2.0


def database_check() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "latency_ms": None, "detail": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _layer_round_trip(layer) -> None:
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "status.ping"})
    await asyncio.wait_for(layer.receive(channel), LAYER_TIMEOUT_SECONDS)


def channel_layer_check() -> dict:
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "backend": backend, "latency_ms": None}
    started = time.perf_counter()
    try:
        async_to_sync(_layer_round_trip)(layer)
    except Exception as exc:
        return {"ok": False, "backend": backend, "latency_ms": None, "detail": type(exc).__name__}
    return {"ok": True, "backend": backend, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def experiment_counts(user) -> dict[str, int]:
    counts = {status: 0 for status in ExperimentStatus.values}
    rows = (
        Experiment.objects.visible_to(user)
        .order_by()
        .values("status")
        .annotate(n=Count("id", distinct=True))
        .values_list("status", "n")
    )
    for status, n in rows:
        counts[status] = n
    return counts


def shared_status() -> dict:
    """Everything of the status but the caller's experiment counts."""
    try:
        connections = providers.connection_counter()
    except Exception:
        connections = None
    return {
        "database": database_check(),
        "channel_layer": channel_layer_check(),
        "version": settings.RESEARCH_ENGINE_VERSION,
        "uptime_seconds": round(time.monotonic() - PROCESS_STARTED, 1),
        "connections": connections,
    }


def build_status(user) -> dict:
    return {**shared_status(), "experiments": experiment_counts(user)}
