"""The one road for events: number, store, and after commit, publish.

``record_event`` must run inside the transaction of the change it describes. It takes
the experiment's next ``seq`` with a single upsert on its ``EventStream`` row; the row
lock that upsert holds until commit makes concurrent writers to one experiment queue
behind each other, so seq order is commit order and a rollback leaves no hole. The event
is published through the channel layer only from ``transaction.on_commit``: no client
can see an event whose data is not yet readable, and a rolled-back change sends nothing.
"""

import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from experiments.timestamps import format_timestamp
from realtime.models import Event, EventStream

logger = logging.getLogger(__name__)

_NEXT_SEQ_SQL = (
    "INSERT INTO {table} (experiment_id, last_seq, pruned_through) VALUES (%s, 1, 0) "
    "ON CONFLICT (experiment_id) DO UPDATE SET last_seq = {table}.last_seq + 1 "
    "RETURNING last_seq"
)


def next_seq(experiment_id: str) -> int:
    """Allocate the experiment's next seq under the row lock (held until commit)."""
    table = connection.ops.quote_name(EventStream._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_SEQ_SQL.format(table=table), [experiment_id])
        return cursor.fetchone()[0]


def current_seq(experiment_id: str) -> int:
    """The highest committed seq of an experiment (0 before its first event)."""
    value = EventStream.objects.filter(experiment_id=experiment_id).values_list("last_seq", flat=True).first()
    return value or 0


def current_seqs(experiment_ids) -> dict[str, int]:
    return dict(
        EventStream.objects.filter(experiment_id__in=list(experiment_ids)).values_list("experiment_id", "last_seq")
    )


def last_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def event_payload(event: Event) -> dict:
    """The event as every client sees it (the contract's ``{"type": "event", …}``)."""
    return {
        "type": "event",
        "id": event.id,
        "seq": event.seq,
        "event_type": event.event_type,
        "experiment_id": event.experiment_id,
        "run_id": event.run_id,
        "data": event.data,
        "timestamp": format_timestamp(event.timestamp),
    }


def encode(payload: dict) -> str:
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def record_event(
    *,
    event_type: str,
    data: dict,
    experiment_id: str | None = None,
    run_id: str | None = None,
    audience: list[int] | None = None,
) -> Event:
    """Store an event inside the current transaction and publish it once that commits.

    ``audience``: the user ids who may see it, for an event whose experiment will be gone
    by the time it is delivered (``experiment_deleted``).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("record_event must run inside the transaction of its change")
    # Round-trip through JSON so the stored data equals what clients are sent.
    data = json.loads(encode(data))
    seq = next_seq(experiment_id) if experiment_id else None
    event = Event.objects.create(
        experiment_id=experiment_id,
        seq=seq,
        run_id=run_id,
        event_type=event_type,
        data=data,
        timestamp=timezone.now(),
    )
    from realtime.publish import publish_event

    text = encode(event_payload(event))
    transaction.on_commit(
        lambda: publish_event(
            experiment_id=experiment_id,
            seq=seq,
            event_id=event.id,
            run_id=run_id,
            event_type=event_type,
            text=text,
            audience=audience,
        )
    )
    return event
