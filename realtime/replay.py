"""Reading the event store for replay and gap repair (synchronous; call through
``database_sync_to_async``).

Stored events come back as the same flat messages the channel layer carries
(``stream_message``), so a socket treats a replayed event and a live one alike.
"""

from dataclasses import dataclass, field

from django.db.models import Max, Q

from realtime.groups import EVENT_MESSAGE
from realtime.models import GLOBAL_STREAM_KEY, Event, EventStream
from realtime.store import current_seqs, encode, event_payload, last_event_id

MAX_REPLAY_EVENTS = 100_000


class ReplayUnavailable(Exception):
    """The events after ``since`` are no longer (or not yet) stored."""


def stream_message(event: Event) -> dict:
    return {
        "type": EVENT_MESSAGE,
        "experiment_id": event.experiment_id,
        "seq": event.seq,
        "id": event.id,
        "run_id": event.run_id,
        "event_type": event.event_type,
        "text": encode(event_payload(event)),
    }


def events_between(
    experiment_id: str, after: int, upto: int | None = None, limit: int = MAX_REPLAY_EVENTS
) -> list[dict]:
    """Stored events of one experiment with ``after < seq <= upto``, in seq order, at most
    ``limit`` of them (page on from the last seq)."""
    queryset = Event.objects.filter(experiment_id=experiment_id, seq__gt=after)
    if upto is not None:
        queryset = queryset.filter(seq__lte=upto)
    return [stream_message(e) for e in queryset.order_by("seq")[:limit]]


def stream_state(experiment_id: str) -> tuple[int, int]:
    """(current seq, highest pruned seq) of an experiment."""
    row = EventStream.objects.filter(experiment_id=experiment_id).values_list("last_seq", "pruned_through").first()
    return row or (0, 0)


def check_since(experiment_id: str, since: int) -> int:
    """The current seq if a replay after ``since`` can be complete, else ``ReplayUnavailable``."""
    current, pruned_through = stream_state(experiment_id)
    if since > current or since < pruned_through:
        raise ReplayUnavailable(experiment_id)
    return current


def global_pruned_through() -> int:
    return (
        EventStream.objects.filter(experiment_id=GLOBAL_STREAM_KEY).values_list("pruned_through", flat=True).first()
        or 0
    )


def global_events_after(
    since_id: int, *, experiment_ids: set[str] | None, upto_id: int, limit: int = MAX_REPLAY_EVENTS
) -> list[dict]:
    """Events with ``since_id < id <= upto_id`` of the given experiments (None: all),
    and system events, in id order; at most ``limit`` (page on from the last id)."""
    queryset = Event.objects.filter(id__gt=since_id, id__lte=upto_id).order_by("id")
    if experiment_ids is not None:
        queryset = queryset.filter(Q(experiment_id__in=experiment_ids) | Q(experiment_id__isnull=True))
    return [stream_message(e) for e in queryset[:limit]]


def seq_at_id(experiment_id: str, event_id: int) -> int:
    """The highest seq of an experiment among events with ``id <= event_id``."""
    return Event.objects.filter(experiment_id=experiment_id, id__lte=event_id).aggregate(m=Max("seq"))["m"] or 0


def system_events_after(since_id: int, upto_id: int | None = None) -> list[dict]:
    queryset = Event.objects.filter(experiment_id__isnull=True, id__gt=since_id)
    if upto_id is not None:
        queryset = queryset.filter(id__lte=upto_id)
    return [stream_message(e) for e in queryset.order_by("id")[:MAX_REPLAY_EVENTS]]


def system_events_by_id(event_ids: list[int]) -> list[dict]:
    queryset = Event.objects.filter(id__in=event_ids, experiment_id__isnull=True).order_by("id")
    return [stream_message(e) for e in queryset]


def events_after_id(experiment_id: str, after_id: int, upto_seq: int) -> list[dict]:
    """Stored events of one experiment with ``id > after_id`` and ``seq <= upto_seq``."""
    queryset = Event.objects.filter(experiment_id=experiment_id, id__gt=after_id, seq__lte=upto_seq)
    return [stream_message(e) for e in queryset.order_by("seq")[:MAX_REPLAY_EVENTS]]


@dataclass(frozen=True)
class SweepReads:
    seqs: dict[str, int]  # stored seq per explicitly followed experiment
    newest_id: int | None = None  # the newest event id (when the window was read)
    window_tops: dict[str, int] = field(default_factory=dict)  # top seq per experiment in the window
    system_ids: list[int] = field(default_factory=list)  # system events in the window


def sweep_reads(experiment_ids: list[str], *, window_after_id: int | None) -> SweepReads:
    """What one sweep of the hub reads (``realtime/sweep.py``): a few indexed queries."""
    seqs = current_seqs(experiment_ids) if experiment_ids else {}
    if window_after_id is None:
        return SweepReads(seqs)
    newest = last_event_id()
    if newest <= window_after_id:
        return SweepReads(seqs, newest)
    window = Event.objects.filter(id__gt=window_after_id, id__lte=newest)
    tops, has_system = {}, False
    for row in window.order_by().values("experiment_id").annotate(top=Max("seq")):
        if row["experiment_id"] is None:
            has_system = True
        else:
            tops[row["experiment_id"]] = row["top"]
    system_ids = []
    if has_system:
        system_ids = list(window.filter(experiment_id__isnull=True).values_list("id", flat=True))
    return SweepReads(seqs, newest, tops, system_ids)


EXPORT_PAGE = 5000


def experiment_events(experiment_id: str):
    """Every stored event of an experiment as its payload, page by page (for exports)."""
    last = 0
    while True:
        page = list(Event.objects.filter(experiment_id=experiment_id, seq__gt=last).order_by("seq")[:EXPORT_PAGE])
        if not page:
            return
        for event in page:
            yield event_payload(event)
        last = page[-1].seq


def experiment_event_count(experiment_id: str) -> int:
    return Event.objects.filter(experiment_id=experiment_id).count()
