"""The process hub: one channel-layer member per serving process, fanning out to sockets.

Each daphne process (each event loop) has one hub with one channel on the layer. The hub
joins the experiment group ``experiment.<id>`` while some local socket follows that
experiment, ``experiments.all`` while some local socket follows the global stream, the
system group always, and ``run.<id>`` while the run's agent is connected here. So one
event costs one layer message per process, serialized once, and the hub hands the same
text to every local socket that wants it (framed once for all of them under daphne).

The hub also makes the stream exact at the process level before sockets see it:

* per experiment it remembers the last seq it delivered; duplicates are dropped and a
  gap is filled from the event store before the later event goes out;
* every ``SWEEP_SECONDS`` it compares the stored seq of each followed experiment with
  what it delivered, and the newest stored event id with the newest it saw. What stays
  missing for two sweeps in a row was dropped by the layer with nothing after it, and is
  read from the store and delivered. That costs two indexed queries per process per
  sweep, however many sockets are open (docs/BENCHMARKS.md has the figures);
* it sends heartbeats to sockets silent for ``HEARTBEAT_SECONDS``;
* it repairs control messages an agent socket missed, from the run's stored state.

Sockets then enforce seq order themselves (``realtime/streams.py``).
"""

import asyncio
import contextlib
import logging
import time
import weakref
from collections import defaultdict

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from experiments import runtime_config
from experiments.timestamps import format_timestamp
from realtime import replay, snapshot
from realtime.groups import (
    ACCESS_MESSAGE,
    CONTROL_MESSAGE,
    EVENT_MESSAGE,
    GLOBAL_GROUP,
    SYSTEM_GROUP,
    experiment_group,
    run_group,
)
from realtime.store import current_seqs, encode, last_event_id
from realtime.tasks import spawn

logger = logging.getLogger(__name__)

_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def get_hub() -> "Hub":
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


def hubs() -> list["Hub"]:
    return list(_hubs.values())


def _prepare(text: str):
    """The text framed once as a WebSocket message, for every socket of this process."""
    try:
        from autobahn.websocket.protocol import PreparedMessage
    except ImportError:  # pragma: no cover - not under daphne
        return None
    return PreparedMessage(text.encode("utf-8"), False, False, False)


class Hub:
    def __init__(self):
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self._start_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self.experiment_sockets: dict[str, set] = defaultdict(set)
        self.global_sockets: set = set()
        self.multiplexed_sockets: set = set()
        self.agent_sockets: dict[str, set] = defaultdict(set)
        self.sockets: set = set()  # every local dashboard and agent socket
        self.groups: set[str] = set()
        self.delivered: dict[str, int] = {}
        self.max_seen_id = 0
        self.system_last_id = 0
        self.global_joined_id: int | None = None
        self._viewers: dict[str, frozenset | None] = {}
        self._viewer_versions: dict[str, int] = defaultdict(int)
        self._lagging: dict[str, int] = {}
        self._lagging_id: int | None = None
        self.events_delivered = 0
        self.repairs = 0

    # Lifecycle -------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        if self.channel is not None or self.layer is None:
            return
        async with self._start_lock:
            if self.channel is not None:
                return
            self.channel = await self.layer.new_channel(prefix="hub.")
            await self._join(SYSTEM_GROUP)
            self.system_last_id = await database_sync_to_async(last_event_id)()
            self.max_seen_id = self.system_last_id
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._receive_loop(), name="realtime-hub-receive"),
                loop.create_task(self._tick_loop(), name="realtime-hub-tick"),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for group in list(self.groups):
            await self._discard(group)
        self.groups.clear()
        self.channel = None

    async def _join(self, group: str) -> None:
        if group not in self.groups:
            self.groups.add(group)
            await self.layer.group_add(group, self.channel)

    def _leave_later(self, group: str) -> None:
        if group in self.groups:
            self.groups.discard(group)
            spawn(self._discard(group))

    async def _discard(self, group: str) -> None:
        try:
            await self.layer.group_discard(group, self.channel)
        except Exception:
            logger.debug("group_discard %s failed", group, exc_info=True)

    # Registration ----------------------------------------------------------------------

    async def add_socket(self, socket, *, multiplexed: bool) -> None:
        await self.ensure_started()
        self.sockets.add(socket)
        if multiplexed:
            self.multiplexed_sockets.add(socket)

    async def attach_experiment(self, stream, experiment_id: str) -> None:
        await self.ensure_started()
        self.experiment_sockets[experiment_id].add(stream)
        group = experiment_group(experiment_id)
        if group not in self.groups:
            await self._join(group)
            if experiment_id not in self.delivered:
                # Baseline read after joining: every later event arrives through the group.
                seqs = await database_sync_to_async(current_seqs)([experiment_id])
                self.delivered.setdefault(experiment_id, seqs.get(experiment_id, 0))

    def detach_experiment(self, stream, experiment_id: str) -> None:
        sockets = self.experiment_sockets.get(experiment_id)
        if sockets is not None:
            sockets.discard(stream)
            if not sockets:
                del self.experiment_sockets[experiment_id]
                self._leave_later(experiment_group(experiment_id))
                if not self.global_sockets:
                    self.delivered.pop(experiment_id, None)

    async def attach_global(self, stream) -> None:
        await self.ensure_started()
        self.global_sockets.add(stream)
        if GLOBAL_GROUP not in self.groups:
            await self._join(GLOBAL_GROUP)
            self.global_joined_id = await database_sync_to_async(last_event_id)()

    def detach_global(self, stream) -> None:
        self.global_sockets.discard(stream)
        if not self.global_sockets:
            self._leave_later(GLOBAL_GROUP)
            self.global_joined_id = None
            for experiment_id in list(self.delivered):
                if experiment_id not in self.experiment_sockets:
                    del self.delivered[experiment_id]

    async def attach_agent(self, socket, run_id: str) -> None:
        await self.ensure_started()
        self.sockets.add(socket)
        self.agent_sockets[run_id].add(socket)
        await self._join(run_group(run_id))

    def detach_agent(self, socket, run_id: str) -> None:
        self.sockets.discard(socket)
        sockets = self.agent_sockets.get(run_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.agent_sockets[run_id]
                self._leave_later(run_group(run_id))

    def detach_all(self, stream) -> None:
        for experiment_id in [e for e in stream.subscriptions if e is not None]:
            self.detach_experiment(stream, experiment_id)
        if stream in self.global_sockets:
            self.detach_global(stream)

    def remove_socket(self, socket) -> None:
        self.sockets.discard(socket)
        self.multiplexed_sockets.discard(socket)

    @property
    def local_connections(self) -> int:
        return len(self.sockets)

    # Who may see an experiment ---------------------------------------------------------

    async def viewers(self, experiment_id: str) -> frozenset | None:
        """Member user ids (None: no such experiment), cached until access changes."""
        if experiment_id in self._viewers:
            return self._viewers[experiment_id]
        version = self._viewer_versions[experiment_id]
        viewers = await database_sync_to_async(snapshot.viewers_of)(experiment_id)
        if self._viewer_versions[experiment_id] == version:
            self._viewers[experiment_id] = viewers
        return viewers

    def _invalidate_viewers(self, experiment_id: str) -> None:
        self._viewers.pop(experiment_id, None)
        self._viewer_versions[experiment_id] += 1

    # Receiving -------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis restarting: wait, then make sure our groups are still joined.
                logger.warning("hub receive failed (%r); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                await self._rejoin()
                continue
            try:
                await self.dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub could not dispatch %s", message.get("type"))

    async def _rejoin(self) -> None:
        for group in list(self.groups):
            try:
                await self.layer.group_add(group, self.channel)
            except Exception:
                logger.debug("rejoin %s failed", group, exc_info=True)
                return

    async def dispatch(self, message: dict) -> None:
        kind = message.get("type")
        if kind == EVENT_MESSAGE:
            if message["experiment_id"] is None:
                await self._on_system_event(message)
            else:
                await self._on_experiment_event(message)
        elif kind == ACCESS_MESSAGE:
            await self._on_access_change(message["experiment_id"], message.get("user_id"))
        elif kind == CONTROL_MESSAGE:
            await self._on_control(message["run_id"], message["control"], message.get("round"))

    async def _on_system_event(self, message: dict) -> None:
        if message["id"] <= self.system_last_id:
            return
        self.system_last_id = message["id"]
        self.max_seen_id = max(self.max_seen_id, message["id"])
        if message["event_type"] == "config_updated":
            runtime_config.invalidate()
        prepared = _prepare(message["text"]) if self.multiplexed_sockets else None
        for stream in list(self.multiplexed_sockets):
            await stream.offer_system(message, prepared)

    async def _on_experiment_event(self, message: dict) -> None:
        experiment_id = message["experiment_id"]
        seq = message["seq"]
        self.max_seen_id = max(self.max_seen_id, message["id"])
        last = self.delivered.get(experiment_id)
        if last is None:
            last = await self._baseline(experiment_id, message)
        if seq <= last:
            return
        if seq > last + 1:
            self.repairs += 1
            missing = await database_sync_to_async(replay.events_between)(experiment_id, last, seq - 1)
            for stored in missing:
                await self._fan_out(stored)
        await self._fan_out(message)

    async def _baseline(self, experiment_id: str, message: dict) -> int:
        """The seq an experiment first seen on the global stream was at when we joined."""
        joined = self.global_joined_id
        if joined is None or message["id"] <= joined or message["seq"] == 1:
            return message["seq"] - 1
        return await database_sync_to_async(replay.seq_at_id)(experiment_id, joined)

    async def _fan_out(self, message: dict) -> None:
        experiment_id = message["experiment_id"]
        if message["seq"] <= self.delivered.get(experiment_id, 0):
            return
        self.delivered[experiment_id] = message["seq"]
        targets = list(self.experiment_sockets.get(experiment_id, ()))
        if self.global_sockets:
            viewers = message.get("audience")
            if viewers is None:
                viewers = await self.viewers(experiment_id) or frozenset()
            for stream in self.global_sockets:
                if stream.is_staff or stream.user_id in viewers:
                    targets.append(stream)
        if not targets:
            return
        prepared = _prepare(message["text"])
        seen = set()
        for stream in targets:
            if stream in seen:
                continue
            seen.add(stream)
            if stream.outbox.fast:
                stream.offer_fast(message, prepared)
            else:
                await stream.offer(message, prepared)
        self.events_delivered += 1

    async def _on_access_change(self, experiment_id: str, user_id: int | None) -> None:
        self._invalidate_viewers(experiment_id)
        affected = [
            s
            for s in self.experiment_sockets.get(experiment_id, ())
            if user_id is None or s.user_id == user_id
        ]
        if not affected:
            return
        viewers = await self.viewers(experiment_id)
        for stream in affected:
            if viewers is None:
                await stream.lose_access(experiment_id, deleted=True)
            elif not (stream.is_staff or stream.user_id in viewers):
                await stream.lose_access(experiment_id, deleted=False)

    async def _on_control(self, run_id: str, control: dict, round_key) -> None:
        for socket in list(self.agent_sockets.get(run_id, ())):
            await socket.push_control(control, round_key)

    # The periodic sweep ----------------------------------------------------------------

    async def _tick_loop(self) -> None:
        sweep_every = settings.REALTIME["SWEEP_SECONDS"]
        heartbeat_after = settings.REALTIME["HEARTBEAT_SECONDS"]
        tick = min(sweep_every, max(0.5, heartbeat_after / 4))
        next_sweep = time.monotonic() + sweep_every
        while True:
            await asyncio.sleep(tick)
            try:
                self._send_heartbeats(heartbeat_after)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + sweep_every
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub sweep failed")

    def _send_heartbeats(self, after_seconds: float) -> None:
        now = time.monotonic()
        text = None
        for socket in list(self.sockets):
            if now - socket.last_sent >= after_seconds:
                if text is None:
                    from django.utils import timezone

                    text = encode({"type": "heartbeat", "ts": format_timestamp(timezone.now())})
                socket.send_heartbeat(text)

    async def sweep(self) -> None:
        """Deliver what the layer dropped with nothing after it (see the module doc)."""
        followed = [e for e in self.delivered if e in self.experiment_sockets or self.global_sockets]
        if followed:
            stored = await database_sync_to_async(current_seqs)(followed)
            lagging = {}
            for experiment_id, seq in stored.items():
                if seq > self.delivered.get(experiment_id, seq):
                    lagging[experiment_id] = seq
            for experiment_id, seq in self._lagging.items():
                delivered = self.delivered.get(experiment_id)
                if delivered is not None and delivered < seq:
                    self.repairs += 1
                    missing = await database_sync_to_async(replay.events_between)(
                        experiment_id, delivered, seq
                    )
                    for message in missing:
                        await self._fan_out(message)
            self._lagging = lagging
        if self.global_sockets or self.multiplexed_sockets:
            newest = await database_sync_to_async(last_event_id)()
            previous = self._lagging_id
            self._lagging_id = newest if newest > self.max_seen_id else None
            if previous is not None and previous > self.max_seen_id:
                await self._sweep_ids(previous)
        if self.agent_sockets:
            await self._repair_controls()

    async def _sweep_ids(self, upto_id: int) -> None:
        after = self.max_seen_id
        self.repairs += 1
        if self.multiplexed_sockets:
            for message in await database_sync_to_async(replay.system_events_after)(after, upto_id):
                await self._on_system_event(message)
        if self.global_sockets:
            messages = await database_sync_to_async(replay.global_events_after)(
                after, experiment_ids=None, upto_id=upto_id
            )
            for message in messages:
                if message["experiment_id"] is not None:
                    await self._on_experiment_event(message)
        self.max_seen_id = max(self.max_seen_id, upto_id)

    async def _repair_controls(self) -> None:
        states = await database_sync_to_async(snapshot.agent_run_states)(list(self.agent_sockets))
        for run_id, (status, approval) in states.items():
            for socket in list(self.agent_sockets.get(run_id, ())):
                await socket.reconcile(status, approval)


__all__ = ["Hub", "get_hub", "hubs"]
