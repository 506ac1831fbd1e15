"""One dashboard socket's stream: subscriptions, a cursor per experiment, catch-up.

The process hub (``realtime/hub.py``) offers this socket every event it might want, in
seq order per experiment. The stream keeps, per experiment, the last seq it processed
(its cursor) and enforces the contract's promise on its own:

* a seq at or below the cursor is a duplicate and is dropped;
* a seq past ``cursor + 1`` means something was lost on the way: the stream reads the
  missing events from the event store and sends them first;
* while a subscription is being set up (snapshot, replay) every offered event waits in
  ``pending`` and is processed after the replay, so replay and live join with neither
  gap nor duplicate even when events commit while the replay is read.

System events have no seq; the stream remembers the ids of those it sent, so a replay and
the live copy of one never both go out.

Everything here runs on the event loop; the event store is read through
``database_sync_to_async`` around the small functions of ``realtime/replay.py``, a page
at a time, and a replay waits for a slow reader instead of overflowing its outbox.
"""

import logging
from collections import OrderedDict
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings

from realtime import replay, snapshot
from realtime.store import encode
from realtime.tasks import spawn

logger = logging.getLogger(__name__)

SEND, DROP, GAP = "send", "drop", "gap"
RECENT_SYSTEM_EVENTS = 100
# Live events held while a subscription is set up, per socket; a reader so slow that
# more pile up is closed as too slow (4409) and resumes with since.
MAX_PENDING = 20_000


@dataclass(frozen=True)
class Subscription:
    experiment_id: str | None  # None: the global stream
    run_ids: frozenset | None = None
    event_types: frozenset | None = None

    def matches(self, message: dict) -> bool:
        if self.run_ids is not None and message["run_id"] not in self.run_ids:
            return False
        return self.event_types is None or message["event_type"] in self.event_types


def _forbidden(experiment_id: str) -> dict:
    return {
        "type": "error",
        "code": "forbidden",
        "detail": "No such experiment, or not one you may see.",
        "experiment_id": experiment_id,
    }


class SocketStream:
    def __init__(self, *, user, outbox, hub, multiplexed: bool, on_forbidden):
        self.user = user
        self.user_id = user.pk
        self.is_staff = bool(user.is_staff)
        self.outbox = outbox
        self.hub = hub
        self.multiplexed = multiplexed
        self._on_forbidden = on_forbidden
        self.subscriptions: dict[str | None, Subscription] = {}
        self.cursors: dict[str, int] = {}
        # Events offered while a subscription is set up or a gap is repaired; None when
        # events go straight out.
        self.pending: list[dict] | None = None
        self._holds = 0
        self._draining = False
        # On the global stream, an experiment without a cursor takes events after this id.
        self.global_after_id: int = 0
        # System events: those up to this id are in the snapshot's past; and the latest sent.
        self.system_after_id: int = 0
        self.system_sent: OrderedDict[int, None] = OrderedDict()
        self.closed = False

    # Sending ---------------------------------------------------------------------------

    async def send_json(self, payload: dict) -> None:
        await self.outbox.send(encode(payload))

    async def _send_page(self, texts: list[str]) -> None:
        """Send replayed events, waiting while a slow reader has the outbox backed up."""
        for text in texts:
            await self.outbox.send(text)
        await self.outbox.wait_for_room()

    def _replay_batch(self) -> int:
        return max(1, min(settings.REALTIME["REPLAY_BATCH"], self.outbox.max_queue // 2))

    # Offers from the hub ---------------------------------------------------------------

    def wants(self, message: dict) -> bool:
        sub = self.subscriptions.get(message["experiment_id"])
        if sub is not None and sub.matches(message):
            return True
        sub = self.subscriptions.get(None)
        return sub is not None and sub.matches(message)

    def _advance(self, message: dict):
        """Move the experiment's cursor for ``message``: SEND, DROP or GAP."""
        experiment_id = message["experiment_id"]
        seq = message["seq"]
        last = self.cursors.get(experiment_id)
        if last is None:
            if None not in self.subscriptions or message["id"] <= self.global_after_id:
                return DROP  # not subscribed, or older than the global subscription
            last = seq - 1
        if seq <= last:
            return DROP
        if seq > last + 1:
            return GAP
        self.cursors[experiment_id] = seq
        return SEND if self.wants(message) else DROP

    def _hold_back(self, message: dict) -> bool:
        """Queue an offer behind a subscription being set up or a repair; True if queued."""
        if self.pending is None:
            return False
        self.pending.append(message)
        if len(self.pending) > MAX_PENDING:
            self.pending = []
            self.outbox.overflow()
        return True

    def offer_fast(self, message: dict, prepared=None) -> None:
        """``offer`` for outboxes on daphne's fast path, where sending never suspends."""
        if self.closed or self._hold_back(message):
            return
        decision = self._advance(message)
        if decision is SEND:
            self.outbox.send_now(message["text"], prepared)
        elif decision is GAP:
            self.pending = [message]
            self._start_drain()

    async def offer(self, message: dict, prepared=None) -> None:
        if self.closed or self._hold_back(message):
            return
        decision = self._advance(message)
        if decision is SEND:
            await self.outbox.send(message["text"], prepared)
        elif decision is GAP:
            self.pending = [message]
            self._start_drain()

    def _system_is_new(self, message: dict) -> bool:
        event_id = message["id"]
        if event_id <= self.system_after_id or event_id in self.system_sent:
            return False
        self.system_sent[event_id] = None
        while len(self.system_sent) > RECENT_SYSTEM_EVENTS:
            self.system_sent.popitem(last=False)
        return True

    async def offer_system(self, message: dict, prepared=None) -> None:
        if self.closed or not self.multiplexed or self._hold_back(message):
            return
        if self._system_is_new(message):
            await self.outbox.send(message["text"], prepared)

    # Holding and catching up ----------------------------------------------------------

    def _hold(self) -> None:
        self._holds += 1
        if self.pending is None:
            self.pending = []

    async def _release(self) -> None:
        self._holds -= 1
        if self._holds == 0 and not self._draining:
            await self._drain()

    def _start_drain(self) -> None:
        if not self._draining and self._holds == 0:
            self._draining = True
            spawn(self._drain())

    async def _drain(self) -> None:
        """Process ``pending`` in order, repairing gaps from the store, until it is empty.

        Offers that arrive meanwhile join the end of ``pending``; a subscription being
        set up (a hold) pauses the drain until it is released.
        """
        self._draining = True
        try:
            while self.pending and self._holds == 0 and not self.closed:
                await self._process(self.pending.pop(0))
        except Exception:
            logger.exception("stream catch-up failed")
            self.pending = []
        finally:
            self._draining = False
            if self._holds == 0 and not self.pending:
                self.pending = None

    async def _process(self, message: dict) -> None:
        experiment_id = message["experiment_id"]
        if experiment_id is None:
            if self.multiplexed and self._system_is_new(message):
                await self.outbox.send(message["text"])
            return
        decision = self._advance(message)
        if decision is GAP:
            last = self.cursors.get(experiment_id, message["seq"] - 1)
            missing = await database_sync_to_async(replay.events_between)(experiment_id, last, message["seq"] - 1)
            for stored in missing:
                if self._advance(stored) is SEND:
                    await self.outbox.send(stored["text"])
            # Whatever the store no longer has (pruned) cannot be sent: move on. The
            # cursor may have moved meanwhile (a subscription set up): never backwards.
            self.cursors[experiment_id] = max(self.cursors.get(experiment_id, 0), message["seq"] - 1)
            decision = self._advance(message)
        if decision is SEND:
            await self.outbox.send(message["text"])

    # Opening ---------------------------------------------------------------------------

    async def open_global(self) -> None:
        """``/ws/research/``: the snapshot; system events after it follow."""
        self._hold()
        try:
            self.hub.follow_system(self)
            body = await database_sync_to_async(snapshot.global_snapshot)(self.user)
            self.system_after_id = body["last_event_id"]
            await self.send_json(body)
        finally:
            await self._release()

    async def open_experiment_path(self, experiment_id: str, since_raw: str | None) -> bool:
        """The ``/ws/research/experiments/<id>/`` socket: snapshot, then ``since`` replay."""
        viewers = await self.hub.viewers(experiment_id)
        if viewers is None or not (self.is_staff or self.user_id in viewers):
            return False
        self._hold()
        try:
            self.subscriptions[experiment_id] = Subscription(experiment_id)
            await self.hub.attach_experiment(self, experiment_id)
            body = await self.hub.experiment_snapshot(experiment_id, self.user)
            if body is None:
                await self.unsubscribe(experiment_id)
                return False
            seq = body["seq"]
            await self.send_json(body)
            if since_raw is not None:
                await self._resume_path(experiment_id, since_raw, seq, body)
            self.cursors[experiment_id] = max(self.cursors.get(experiment_id, 0), seq)
        finally:
            await self._release()
        return True

    async def _resume_path(self, experiment_id: str, since_raw: str, seq: int, body: dict) -> None:
        try:
            since = int(since_raw)
            if since < 0:
                raise ValueError
        except ValueError:
            await self.send_json(
                {"type": "error", "code": "bad_request", "detail": "since must be a whole number ≥ 0."}
            )
            return
        _current, pruned_through = await database_sync_to_async(replay.stream_state)(experiment_id)
        if since > seq or since < pruned_through:
            await self.send_json(
                {
                    "type": "subscribed",
                    "experiment_id": experiment_id,
                    "seq": seq,
                    "recovered": False,
                    "snapshot": body,
                }
            )
            return
        await self._replay_experiment(experiment_id, since, seq)

    # Subscriptions ---------------------------------------------------------------------

    async def subscribe_experiment(
        self,
        experiment_id: str,
        *,
        since: int | None,
        run_ids=None,
        event_types=None,
        reply: bool = True,
    ) -> None:
        """Subscribe (or re-subscribe with new filters) to one experiment."""
        viewers = await self.hub.viewers(experiment_id)
        if viewers is None or not (self.is_staff or self.user_id in viewers):
            await self.send_json(_forbidden(experiment_id))
            return
        self._hold()
        try:
            self.subscriptions[experiment_id] = Subscription(experiment_id, run_ids, event_types)
            await self.hub.attach_experiment(self, experiment_id)
            seq, pruned_through = await database_sync_to_async(replay.stream_state)(experiment_id)
            if since is not None and (since > seq or since < pruned_through):
                fresh = await database_sync_to_async(snapshot.experiment_snapshot)(experiment_id, self.user)
                if fresh is None:  # deleted or access lost meanwhile
                    await self.unsubscribe(experiment_id)
                    await self.send_json(_forbidden(experiment_id))
                    return
                self.cursors[experiment_id] = max(self.cursors.get(experiment_id, 0), fresh["seq"])
                if reply:
                    await self.send_json(
                        {
                            "type": "subscribed",
                            "experiment_id": experiment_id,
                            "seq": fresh["seq"],
                            "recovered": False,
                            "snapshot": fresh,
                        }
                    )
                return
            if reply:
                await self.send_json(
                    {"type": "subscribed", "experiment_id": experiment_id, "seq": seq, "recovered": True}
                )
            if since is not None:
                await self._replay_experiment(experiment_id, since, seq)
            self.cursors[experiment_id] = max(self.cursors.get(experiment_id, 0), seq)
        finally:
            await self._release()

    async def _replay_experiment(self, experiment_id: str, since: int, upto: int) -> None:
        sub = self.subscriptions[experiment_id]
        after, batch = since, self._replay_batch()
        while after < upto and not self.closed:
            page = await database_sync_to_async(replay.events_between)(experiment_id, after, upto, batch)
            if not page:
                return
            await self._send_page([m["text"] for m in page if sub.matches(m)])
            after = page[-1]["seq"]

    async def subscribe_global(self, *, since: int | None, run_ids=None, event_types=None) -> None:
        self._hold()
        try:
            self.subscriptions[None] = Subscription(None, run_ids, event_types)
            await self.hub.attach_global(self)
            upto_id = await database_sync_to_async(snapshot.last_event_id)()
            if since is not None:
                pruned = await database_sync_to_async(replay.global_pruned_through)()
                if since > upto_id or since < pruned:
                    fresh = await database_sync_to_async(snapshot.global_snapshot)(self.user)
                    self.global_after_id = fresh["last_event_id"]
                    await self.send_json(
                        {
                            "type": "subscribed",
                            "experiment_id": None,
                            "seq": fresh["last_event_id"],
                            "recovered": False,
                            "snapshot": fresh,
                        }
                    )
                    return
            await self.send_json({"type": "subscribed", "experiment_id": None, "seq": upto_id, "recovered": True})
            if since is None:
                self.global_after_id = upto_id
                return
            await self._replay_global(since, upto_id)
            self.global_after_id = since
        finally:
            await self._release()

    async def _replay_global(self, since: int, upto_id: int) -> None:
        visible = await database_sync_to_async(snapshot.visible_experiment_ids)(self.user)
        sub = self.subscriptions[None]
        after, batch = since, self._replay_batch()
        while after < upto_id and not self.closed:
            page = await database_sync_to_async(replay.global_events_after)(
                after, experiment_ids=visible, upto_id=upto_id, limit=batch
            )
            if not page:
                return
            texts = []
            for message in page:
                experiment_id = message["experiment_id"]
                if experiment_id is None:
                    if self.multiplexed and self._system_is_new(message):
                        texts.append(message["text"])
                    continue
                cursor = self.cursors.get(experiment_id, 0)
                if message["seq"] <= cursor:
                    continue  # already sent on this socket (another subscription)
                self.cursors[experiment_id] = message["seq"]
                if sub.matches(message):
                    texts.append(message["text"])
            await self._send_page(texts)
            after = page[-1]["id"]

    async def unsubscribe(self, experiment_id: str | None) -> bool:
        if experiment_id not in self.subscriptions:
            return False
        del self.subscriptions[experiment_id]
        if experiment_id is None:
            self.hub.detach_global(self)
            self.cursors = {e: s for e, s in self.cursors.items() if e in self.subscriptions}
        else:
            self.hub.detach_experiment(self, experiment_id)
            if None not in self.subscriptions:
                self.cursors.pop(experiment_id, None)
        return True

    async def lose_access(self, experiment_id: str, *, deleted: bool) -> None:
        """Membership removed or experiment deleted: end the subscription at once."""
        had = experiment_id in self.subscriptions
        if had:
            await self.unsubscribe(experiment_id)
        self.cursors.pop(experiment_id, None)
        if had:
            await self._on_forbidden(experiment_id, deleted)

    def close(self) -> None:
        self.closed = True
        self.pending = None
        self.hub.detach_all(self)
