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
* a periodic sweep (``realtime/sweep.py``) finds what the layer dropped with nothing
  after it, and sends heartbeats;
* membership changes and deletions reach the open sockets they concern at once.

Sockets then enforce seq order themselves (``realtime/streams.py``).
"""

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections import OrderedDict, defaultdict

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from experiments import runtime_config
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
from realtime.store import current_seqs, last_event_id
from realtime.sweep import Sweeper
from realtime.tasks import spawn

logger = logging.getLogger(__name__)

# System events have no seq: the hub remembers the ids of the latest ones it delivered.
RECENT_SYSTEM_EVENTS = 1000
SNAPSHOTS_KEPT = 100
VIEWERS_TTL_SECONDS = 30.0

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
        self.multiplexed_sockets: set = set()  # streams on /ws/research/: system events
        self.agent_sockets: dict[str, set] = defaultdict(set)
        self.sockets: set = set()  # every local dashboard and agent socket
        self.groups: set[str] = set()
        self.delivered: dict[str, int] = {}
        self.global_joined_id: int | None = None
        self.started_at_id = 0
        self.system_delivered: OrderedDict[int, None] = OrderedDict()
        self._viewers: dict[str, tuple[frozenset | None, float]] = {}  # viewers, good until
        self._viewer_versions: dict[str, int] = defaultdict(int)
        self._snapshots: OrderedDict[str, dict] = OrderedDict()
        self.sweeper = Sweeper(self)
        self.events_delivered = 0
        self.repairs = 0

    # Lifecycle -------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        if self.channel is not None or self.layer is None:
            return
        async with self._start_lock:
            if self.channel is not None:
                return
            channel = await self.layer.new_channel(prefix="hub.")
            self.started_at_id = await database_sync_to_async(last_event_id)()
            self.sweeper.start_window(self.started_at_id)
            self.channel = channel
            await self._join(SYSTEM_GROUP)
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._receive_loop(), name="realtime-hub-receive"),
                loop.create_task(self.sweeper.run(), name="realtime-hub-sweep"),
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
            spawn(self._discard_unless_rejoined(group))

    async def _discard_unless_rejoined(self, group: str) -> None:
        # A socket may follow the group again before this runs, or while the layer
        # discards: the hub must end up a member whenever the group is in ``groups``.
        if group in self.groups:
            return
        await self._discard(group)
        if group in self.groups:
            await self.layer.group_add(group, self.channel)

    async def _discard(self, group: str) -> None:
        try:
            await self.layer.group_discard(group, self.channel)
        except Exception:
            logger.debug("group_discard %s failed", group, exc_info=True)

    async def rejoin(self) -> None:
        """Join every group again: Redis forgets members after ``group_expiry`` or a restart,
        and the in-memory layer drops a channel whose messages expired."""
        for group in list(self.groups):
            try:
                await self.layer.group_add(group, self.channel)
            except Exception:
                logger.debug("rejoin %s failed", group, exc_info=True)
                return

    # Registration ----------------------------------------------------------------------

    async def add_socket(self, socket) -> None:
        """Register a local socket (heartbeats, counts, message rate)."""
        await self.ensure_started()
        self.sockets.add(socket)

    def follow_system(self, stream) -> None:
        """A stream on ``/ws/research/``: it takes system events."""
        self.multiplexed_sockets.add(stream)

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
                self._snapshots.pop(experiment_id, None)
                self._leave_later(experiment_group(experiment_id))
                if not self.global_sockets:
                    self.delivered.pop(experiment_id, None)
                    # Access changes no longer reach this process for it.
                    self._viewers.pop(experiment_id, None)

    async def attach_global(self, stream) -> None:
        await self.ensure_started()
        self.global_sockets.add(stream)
        if GLOBAL_GROUP not in self.groups:
            await self._join(GLOBAL_GROUP)
            self.global_joined_id = await database_sync_to_async(last_event_id)()

    def detach_global(self, stream) -> None:
        self.global_sockets.discard(stream)
        if not self.global_sockets and GLOBAL_GROUP in self.groups:
            self._leave_later(GLOBAL_GROUP)
            self.global_joined_id = None
            for experiment_id in list(self.delivered):
                if experiment_id not in self.experiment_sockets:
                    del self.delivered[experiment_id]
            for experiment_id in list(self._viewers):
                if experiment_id not in self.experiment_sockets:
                    del self._viewers[experiment_id]

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

    def remove_socket(self, socket, *, system_stream=None) -> None:
        self.sockets.discard(socket)
        self.multiplexed_sockets.discard(system_stream)

    @property
    def local_connections(self) -> int:
        return len(self.sockets)

    # Who may see an experiment ---------------------------------------------------------

    def _hears_access_changes(self, experiment_id: str) -> bool:
        return GLOBAL_GROUP in self.groups or experiment_group(experiment_id) in self.groups

    async def viewers(self, experiment_id: str) -> frozenset | None:
        """Member user ids (None: no such experiment).

        Cached only while this process is in a group that carries the experiment's access
        changes; otherwise a membership change could not reach the cache.
        """
        cached = self._viewers.get(experiment_id)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        version = self._viewer_versions[experiment_id]
        viewers = await database_sync_to_async(snapshot.viewers_of)(experiment_id)
        if self._viewer_versions[experiment_id] == version and self._hears_access_changes(experiment_id):
            # A bounded life too: an access change the layer lost, or one made by a
            # process the layer does not connect, holds within VIEWERS_TTL_SECONDS.
            self._viewers[experiment_id] = (viewers, time.monotonic() + VIEWERS_TTL_SECONDS)
        return viewers

    def _invalidate_viewers(self, experiment_id: str) -> None:
        self._viewers.pop(experiment_id, None)
        self._viewer_versions[experiment_id] += 1

    # Snapshots -------------------------------------------------------------------------

    async def experiment_snapshot(self, experiment_id: str, user) -> dict | None:
        """The experiment's snapshot for ``user`` (None if they may not see it).

        A snapshot is the same for every member until the experiment's next event, so
        while this process follows the experiment, sockets opening between two events
        share one read of it: a thousand dashboards opening at once cost one query, not a
        thousand. The events after its ``seq`` reach each socket live, as the socket is
        attached before it asks.
        """
        viewers = await self.viewers(experiment_id)
        if viewers is None or not (user.is_staff or user.pk in viewers):
            return None
        group = experiment_group(experiment_id)
        shared = self._snapshots.get(experiment_id)
        if shared is None or shared["seq"] != self.delivered.get(experiment_id) or group not in self.groups:
            shared = await database_sync_to_async(snapshot.shared_experiment_snapshot)(experiment_id)
            if shared is None:
                return None
            if shared["seq"] == self.delivered.get(experiment_id) and group in self.groups:
                self._snapshots[experiment_id] = shared
                self._snapshots.move_to_end(experiment_id)
                while len(self._snapshots) > SNAPSHOTS_KEPT:
                    self._snapshots.popitem(last=False)
        return snapshot.with_role(shared, snapshot.role_in(viewers, user))

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
                await self.rejoin()
                continue
            try:
                await self.dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub could not dispatch %s", message.get("type"))

    async def dispatch(self, message: dict) -> None:
        kind = message.get("type")
        if kind == EVENT_MESSAGE:
            if message["experiment_id"] is None:
                await self.on_system_event(message)
            else:
                await self.on_experiment_event(message)
        elif kind == ACCESS_MESSAGE:
            await self._on_access_change(message["experiment_id"], message.get("user_id"))
        elif kind == CONTROL_MESSAGE:
            await self._on_control(message["run_id"], message["control"], message.get("round"))

    async def on_system_event(self, message: dict) -> None:
        event_id = message["id"]
        if event_id <= self.started_at_id or event_id in self.system_delivered:
            return
        self.system_delivered[event_id] = None
        while len(self.system_delivered) > RECENT_SYSTEM_EVENTS:
            self.system_delivered.popitem(last=False)
        if message["event_type"] == "config_updated":
            runtime_config.invalidate()
            self._apply_config(message["text"])
        prepared = _prepare(message["text"]) if self.multiplexed_sockets else None
        for stream in list(self.multiplexed_sockets):
            await stream.offer_system(message, prepared)

    def _apply_config(self, text: str) -> None:
        """A new message rate holds for open sockets at once, not only for new ones."""
        try:
            rate = json.loads(text)["data"]["config"]["ws_messages_per_second"]
        except (ValueError, KeyError, TypeError):
            return
        for socket in list(self.sockets):
            socket.set_message_rate(rate)

    async def on_experiment_event(self, message: dict) -> None:
        experiment_id = message["experiment_id"]
        seq = message["seq"]
        last = self.delivered.get(experiment_id)
        if last is None:
            last = await self._baseline(experiment_id, message)
            last = self.delivered.setdefault(experiment_id, last)
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
            targets.extend(await self._global_audience(message))
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

    async def _global_audience(self, message: dict) -> list:
        """Global-stream sockets that may see this event."""
        experiment_id = message["experiment_id"]
        audience = message.get("audience")
        viewers = frozenset(audience) if audience is not None else await self.viewers(experiment_id)
        if viewers is None:
            # Deleted, and this event is not the live experiment_deleted that names its
            # audience (a repair): the sockets that were following it were its viewers.
            return [s for s in self.global_sockets if s.is_staff or experiment_id in s.cursors]
        return [s for s in self.global_sockets if s.is_staff or s.user_id in viewers]

    async def catch_up(self, experiment_id: str) -> None:
        """Deliver whatever of the experiment is stored but not yet delivered here."""
        last = self.delivered.get(experiment_id)
        if last is None:
            return
        missing = await database_sync_to_async(replay.events_between)(experiment_id, last)
        for stored in missing:
            await self._fan_out(stored)

    async def _on_access_change(self, experiment_id: str, user_id: int | None) -> None:
        self._invalidate_viewers(experiment_id)
        affected = [
            s for s in self.experiment_sockets.get(experiment_id, ()) if user_id is None or s.user_id == user_id
        ]
        watching = [s for s in self.global_sockets if (user_id is None or s.user_id == user_id) and not s.is_staff]
        if not affected and not watching:
            return
        viewers = await self.viewers(experiment_id)
        if viewers is None:
            # Deleted: its last event (experiment_deleted) goes out before the close, even
            # if the layer lost it.
            await self.catch_up(experiment_id)
        for stream in watching:
            if viewers is None or stream.user_id not in viewers:
                # Should the user be added again, they start from then, not from here.
                stream.cursors.pop(experiment_id, None)
        for stream in affected:
            if viewers is None:
                await stream.lose_access(experiment_id, deleted=True)
            elif not (stream.is_staff or stream.user_id in viewers):
                await stream.lose_access(experiment_id, deleted=False)

    async def _on_control(self, run_id: str, control: dict, round_key) -> None:
        for socket in list(self.agent_sockets.get(run_id, ())):
            await socket.push_control(control, round_key)


__all__ = ["Hub", "get_hub", "hubs"]
