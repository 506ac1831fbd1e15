"""Event retention: delete events older than ``event_retention_days``.

Each experiment's stream remembers the highest seq it lost (``pruned_through``), and the
global stream the highest id, so a replay from before the cut answers
``recovered: false`` with a fresh snapshot instead of a partial history.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from experiments import runtime_config
from realtime.models import GLOBAL_STREAM_KEY, Event, EventStream

BATCH = 10_000


def prune_events(*, older_than_days: int | None = None, now=None) -> int:
    """Delete old events in batches; returns how many were deleted."""
    days = older_than_days if older_than_days is not None else runtime_config.get("event_retention_days")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(Event.objects.filter(timestamp__lt=cutoff).order_by("id").values_list("id", flat=True)[:BATCH])
            if not ids:
                return deleted
            cut = Event.objects.filter(id__in=ids)
            per_experiment = cut.exclude(experiment_id__isnull=True).values("experiment_id").annotate(top=Max("seq"))
            for row in per_experiment:
                EventStream.objects.filter(experiment_id=row["experiment_id"], pruned_through__lt=row["top"]).update(
                    pruned_through=row["top"]
                )
            EventStream.objects.update_or_create(experiment_id=GLOBAL_STREAM_KEY, defaults={})
            EventStream.objects.filter(experiment_id=GLOBAL_STREAM_KEY, pruned_through__lt=ids[-1]).update(
                pruned_through=ids[-1]
            )
            deleted += cut.delete()[0]
