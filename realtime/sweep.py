"""The hub's periodic work: deliver what the layer dropped with nothing after it; heartbeats.

A message the channel layer drops is repaired by the next one of the same experiment (the
hub sees the gap). One with nothing after it, or one from a process the layer does not
connect to this one, is found here. Every ``SWEEP_SECONDS`` the sweep reads, in one trip
to the database and whatever the number of sockets:

* the stored seq of each experiment a local socket follows explicitly (``EventStream``,
  by primary key);
* while a local socket is on ``/ws/research/``: per experiment, the top seq among the
  events of a short window of recent ids (those after the newest id the sweep before
  last read), and the system events of that window.

What is stored but not delivered at one sweep and still missing at the next was lost
by the layer: the sweep reads it from the event store and delivers it through the hub,
in seq order. Waiting one sweep lets messages still in flight arrive first, so the store
is read only for real losses. A trailing drop therefore arrives within two sweep periods
(3 s with the default 1.5 s); the window also finds an experiment the hub has never seen
(a new experiment whose first event was dropped) and lost system events.
"""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from experiments.timestamps import format_timestamp
from realtime import replay, snapshot
from realtime.store import encode

logger = logging.getLogger(__name__)

REJOIN_SECONDS = 60.0


class Sweeper:
    def __init__(self, hub):
        self.hub = hub
        self.window_from = 0
        self._previous_newest: int | None = None
        self._lagging: dict[str, int] = {}
        self._lagging_unseen: dict[str, int] = {}
        self._lagging_system: list[int] = []

    def start_window(self, event_id: int) -> None:
        self.window_from = event_id
        self._previous_newest = None

    async def run(self) -> None:
        sweep_every = settings.REALTIME["SWEEP_SECONDS"]
        heartbeat_after = settings.REALTIME["HEARTBEAT_SECONDS"]
        tick = min(sweep_every, max(0.1, heartbeat_after / 4))
        next_sweep = time.monotonic() + sweep_every
        next_rejoin = time.monotonic() + REJOIN_SECONDS
        while True:
            await asyncio.sleep(tick)
            try:
                self.send_heartbeats(heartbeat_after)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + sweep_every
                    await self.sweep()
                if now >= next_rejoin:
                    next_rejoin = now + REJOIN_SECONDS
                    await self.hub.rejoin()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("hub sweep failed")

    def send_heartbeats(self, after_seconds: float) -> None:
        now = time.monotonic()
        text = None
        for socket in list(self.hub.sockets):
            if now - socket.last_sent >= after_seconds:
                if text is None:
                    text = encode({"type": "heartbeat", "ts": format_timestamp(timezone.now())})
                socket.send_heartbeat(text)

    async def sweep(self) -> None:
        hub = self.hub
        explicit = [e for e in hub.experiment_sockets if e in hub.delivered]
        scan = bool(hub.global_sockets or hub.multiplexed_sockets)
        if explicit or scan:
            reads = await database_sync_to_async(replay.sweep_reads)(
                explicit, window_after_id=self.window_from if scan else None
            )
            await self._repair_previous()
            self._note_lagging(reads, scan)
        else:
            self._lagging, self._lagging_unseen, self._lagging_system = {}, {}, []
        if hub.agent_sockets:
            await self._repair_controls()

    def _note_lagging(self, reads: "replay.SweepReads", scan: bool) -> None:
        hub = self.hub
        lagging = {e: seq for e, seq in reads.seqs.items() if seq > hub.delivered.get(e, seq)}
        unseen = {}
        if hub.global_sockets:
            for experiment_id, seq in reads.window_tops.items():
                delivered = hub.delivered.get(experiment_id)
                if delivered is None:
                    unseen[experiment_id] = seq
                elif seq > delivered:
                    lagging[experiment_id] = max(seq, lagging.get(experiment_id, 0))
        self._lagging, self._lagging_unseen = lagging, unseen
        self._lagging_system = (
            [i for i in reads.system_ids if i > hub.started_at_id and i not in hub.system_delivered]
            if hub.multiplexed_sockets
            else []
        )
        if scan and reads.newest_id is not None:
            # The next window starts after what the sweep before this one read, so an
            # event committed late (out of id order) is still seen once.
            if self._previous_newest is not None:
                self.window_from = max(self.window_from, self._previous_newest)
            self._previous_newest = reads.newest_id

    async def _repair_previous(self) -> None:
        """Deliver what the previous sweep found stored and undelivered, if still missing."""
        hub = self.hub
        for experiment_id, seq in self._lagging.items():
            delivered = hub.delivered.get(experiment_id)
            if delivered is not None and delivered < seq:
                hub.repairs += 1
                missing = await database_sync_to_async(replay.events_between)(experiment_id, delivered, seq)
                for message in missing:
                    await hub.on_experiment_event(message)
        joined = hub.global_joined_id
        for experiment_id, seq in self._lagging_unseen.items():
            if experiment_id in hub.delivered or not hub.global_sockets or joined is None:
                continue
            hub.repairs += 1
            missing = await database_sync_to_async(replay.events_after_id)(experiment_id, joined, seq)
            for message in missing:
                await hub.on_experiment_event(message)
        lost = [i for i in self._lagging_system if i not in hub.system_delivered]
        if lost and hub.multiplexed_sockets:
            hub.repairs += 1
            for message in await database_sync_to_async(replay.system_events_by_id)(lost):
                await hub.on_system_event(message)

    async def _repair_controls(self) -> None:
        hub = self.hub
        states = await database_sync_to_async(snapshot.agent_run_states)(list(hub.agent_sockets))
        for run_id, (status, approval) in states.items():
            for socket in list(hub.agent_sockets.get(run_id, ())):
                await socket.reconcile(status, approval)
