"""The event store and the small tables the live streams need.

``Event`` is the truth every stream is repaired and replayed from (docs/websocket.md).
Events keep the experiment's public id rather than a foreign key so that the history,
``experiment_deleted`` included, outlives the experiment it describes.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from experiments.ids import PUBLIC_ID_MAX_LENGTH

GLOBAL_STREAM_KEY = "*"


class Event(models.Model):
    id = models.BigAutoField(primary_key=True)
    # Public id of the experiment (``exp_…``); null for system events.
    experiment_id = models.CharField(max_length=PUBLIC_ID_MAX_LENGTH, null=True)
    # 1, 2, 3, … per experiment, in commit order, with no hole; null for system events.
    seq = models.BigIntegerField(null=True)
    run_id = models.CharField(max_length=PUBLIC_ID_MAX_LENGTH, null=True, db_index=True)
    event_type = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    timestamp = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["experiment_id", "seq"], name="one_event_per_seq")]

    def __str__(self) -> str:
        return f"#{self.id} {self.event_type} {self.experiment_id or 'system'}:{self.seq}"


class EventStream(models.Model):
    """Per-experiment sequence counter, updated under a row lock by every event.

    ``pruned_through`` is the highest seq removed by retention, so a replay from before it
    is known to be incomplete. The row keyed ``*`` holds the global stream's pruned event id.
    """

    experiment_id = models.CharField(max_length=PUBLIC_ID_MAX_LENGTH, primary_key=True)
    last_seq = models.BigIntegerField(default=0)
    pruned_through = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.experiment_id} @ {self.last_seq}"


class WsTicket(models.Model):
    """A single-use WebSocket ticket; only its sha256 is stored."""

    key_hash = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"ticket for {self.user_id} until {self.expires_at:%H:%M:%S}"


class ProcessPresence(models.Model):
    """One row per serving process, refreshed every few seconds (live socket counts)."""

    process_id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    connections = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.process_id}: {self.connections} sockets"
