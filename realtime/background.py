"""Per-process background work, started without a lifespan hook.

daphne sends no ASGI ``lifespan`` events, so nothing tells the application that the
server has started. Two triggers cover it: ``start_with_daphne()`` (called when
``research_site.asgi`` is imported) asks daphne's Twisted reactor to start the work once
it runs, so a freshly (re)started daphne sweeps approvals even before any request; and
``StartBackgroundMiddleware`` starts it on the first connection under any other server
(and in tests). Starting twice is harmless: it is once per event loop.

The work, in each process:

* approval timeouts: every ``APPROVAL_SWEEP_SECONDS`` fail the plans past their
  deadline (``agents.approval``; exactly once across processes, see there);
* presence: every few seconds record this process's live socket count, so ``GET status``
  can sum the sockets of every process;
* retention: once an hour prune events older than ``event_retention_days``.
"""

import asyncio
import gc
import logging
import os
import socket
import sys
import uuid
import weakref
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from realtime.tasks import spawn

logger = logging.getLogger(__name__)

PRESENCE_SECONDS = 5.0
PRESENCE_STALE_SECONDS = 15.0
PRUNE_EVERY_SECONDS = 3600.0
PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

_started: "weakref.WeakSet[asyncio.AbstractEventLoop]" = weakref.WeakSet()


def local_connections() -> int:
    from realtime.hub import hubs

    return sum(hub.local_connections for hub in hubs())


def count_connections() -> int:
    """Live sockets of this process plus those other processes reported recently."""
    from realtime.models import ProcessPresence

    since = timezone.now() - timedelta(seconds=PRESENCE_STALE_SECONDS)
    others = (
        ProcessPresence.objects.filter(seen_at__gte=since)
        .exclude(process_id=PROCESS_ID)
        .values_list("connections", flat=True)
    )
    return local_connections() + sum(others)


def record_presence() -> None:
    from realtime.models import ProcessPresence

    now = timezone.now()
    ProcessPresence.objects.update_or_create(
        process_id=PROCESS_ID,
        defaults={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "connections": local_connections(),
            "seen_at": now,
        },
    )
    ProcessPresence.objects.filter(seen_at__lt=now - timedelta(seconds=PRESENCE_STALE_SECONDS * 4)).delete()


def expire_approvals() -> int:
    from agents.approval import expire_overdue_approvals

    return expire_overdue_approvals()


def prune_old_events() -> int:
    from realtime.retention import prune_events

    return prune_events()


async def _every(seconds: float, work, name: str) -> None:
    while True:
        try:
            await database_sync_to_async(work)()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background %s failed", name)
        await asyncio.sleep(seconds)


async def start_background() -> None:
    loop = asyncio.get_running_loop()
    if loop in _started:
        return
    _started.add(loop)
    spawn(_every(settings.APPROVAL_SWEEP_SECONDS, expire_approvals, "approval sweep"))
    spawn(_every(PRESENCE_SECONDS, record_presence, "presence"))
    spawn(_every(PRUNE_EVERY_SECONDS, prune_old_events, "retention"))
    logger.info("background work started in process %s", PROCESS_ID)


class StartBackgroundMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (
            settings.BACKGROUND_TASKS
            and scope["type"] in ("http", "websocket")
            and asyncio.get_running_loop() not in _started
        ):
            await start_background()
        return await self.app(scope, receive, send)


def start_with_daphne() -> None:
    """Under daphne, start the background work as soon as its reactor runs."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or "daphne.server" not in sys.modules:
        return
    loop = getattr(reactor, "_asyncioEventloop", None)
    if loop is None:
        return

    def kick():
        # What is loaded by now (Django, the app, its settings) lives as long as the
        # process: move it out of the collector's way, so a full collection does not
        # walk it again and pause every socket (the pauses show as latency spikes).
        gc.collect()
        gc.freeze()
        if settings.BACKGROUND_TASKS:
            spawn(start_background(), loop=loop)

    reactor.callWhenRunning(kick)
