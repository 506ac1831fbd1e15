"""Agent runs and what they report: metric series, log lines, idempotent report records.

Transitions live in ``agents/lifecycle.py`` and ``agents/reporting.py``; metric storage in
``agents/metrics.py``, downsampled reads in ``agents/metric_reads.py``.
"""

from django.db import models
from django.utils import timezone

from experiments.ids import PUBLIC_ID_MAX_LENGTH, new_run_id


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"


TERMINAL_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED})
ACTIVE_RUN_STATUSES = frozenset({RunStatus.STARTING, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL})


def default_run_metrics() -> dict:
    return {"tokens_used": 0, "cost": 0.0, "elapsed_time": 0.0}


class AgentRun(models.Model):
    public_id = models.CharField(max_length=PUBLIC_ID_MAX_LENGTH, unique=True, default=new_run_id, editable=False)
    # Indexed by the composite indexes below, which start with it.
    experiment = models.ForeignKey(
        "experiments.Experiment", on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    agent_type = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    retry_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retried_by")
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    progress_percent = models.FloatField(default=0.0)
    current_action = models.CharField(max_length=1000, blank=True, default="")
    metrics = models.JSONField(default=default_run_metrics)
    plan = models.JSONField(null=True, blank=True)
    # {"state": "pending"|"approved"|"rejected"|"timed_out", "requested_at", "deadline",
    #  "decided_at", "decided_by", "feedback", "revise"}
    approval = models.JSONField(null=True, blank=True)
    # Set while awaiting approval; the timeout sweep reads it through an index.
    approval_deadline = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    validation = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    stop_reason = models.CharField(max_length=64, blank=True, default="")
    # sha256 of the run token; the plain token is shown once and never stored.
    token_hash = models.CharField(max_length=64, unique=True, null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # Pages of runs in creation order, per experiment and overall (GET agents).
            models.Index(fields=["experiment", "created_at", "id"], name="run_experiment_created"),
            models.Index(fields=["created_at", "id"], name="run_created"),
            models.Index(fields=["experiment", "status"]),
            models.Index(
                fields=["approval_deadline"],
                name="run_awaiting_deadline",
                condition=models.Q(status="awaiting_approval"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.agent_type} ({self.public_id})"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES


class MetricSeries(models.Model):
    """One metric of one run, with its running summary kept current on every batch."""

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="metric_series")
    name = models.CharField(max_length=200)
    count = models.BigIntegerField(default=0)
    min_value = models.FloatField(null=True)
    max_value = models.FloatField(null=True)
    sum_value = models.FloatField(default=0.0)
    last_value = models.FloatField(null=True)
    last_step = models.BigIntegerField(null=True)
    last_timestamp = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="one_series_per_run_metric")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.name}"


class MetricPoint(models.Model):
    """A point; ``idx`` is its arrival ordinal within the series (0, 1, 2, …)."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique (series, idx) index serves every lookup by series.
    # No database constraint: PostgreSQL would check each of a batch's 1,000 rows at commit
    # (about 12 ms a batch). Points are written only under their run's lock (agents/metrics.py),
    # and deleting a series or run deletes its points through Django (on_delete).
    series = models.ForeignKey(
        MetricSeries, on_delete=models.CASCADE, related_name="points", db_index=False, db_constraint=False
    )
    idx = models.BigIntegerField()
    step = models.BigIntegerField()
    value = models.FloatField()
    timestamp = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "idx"], name="one_point_per_series_idx")]

    def __str__(self) -> str:
        return f"{self.series_id}#{self.idx}: {self.value} @ {self.step}"


class MetricBlock(models.Model):
    """Min and max point of a block of ``4**level`` consecutive points of a series.

    The levels form a pyramid that ``agents/metric_reads.py`` reads to downsample a series of
    any length in a few hundred rows while keeping every peak and trough.
    """

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique (series, level, block) index serves lookups by series.
    # No database constraint, as for points.
    series = models.ForeignKey(
        MetricSeries, on_delete=models.CASCADE, related_name="blocks", db_index=False, db_constraint=False
    )
    level = models.PositiveSmallIntegerField()
    block = models.BigIntegerField()
    min_idx = models.BigIntegerField()
    min_step = models.BigIntegerField()
    min_value = models.FloatField()
    min_ts = models.DateTimeField()
    max_idx = models.BigIntegerField()
    max_step = models.BigIntegerField()
    max_value = models.FloatField()
    max_ts = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "level", "block"], name="one_block_per_series_level")]

    def __str__(self) -> str:
        return f"{self.series_id} L{self.level} #{self.block}"


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


class LogLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="log_lines")
    level = models.CharField(max_length=16, choices=LogLevel.choices)
    message = models.TextField()
    timestamp = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["run", "id"])]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"


class IdempotencyRecord(models.Model):
    """The first response to a report sent with an ``Idempotency-Key``."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_FLIGHT)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="one_record_per_run_key")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.key} ({self.state})"
