"""Experiments, their members and roles, and the runtime settings.

State changes do not happen here: ``experiments/lifecycle.py`` owns every transition, so
that each one records its event. The models only describe the data and who may see it.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from experiments.ids import PUBLIC_ID_MAX_LENGTH, new_experiment_id


class ExperimentStatus(models.TextChoices):
    CREATED = "created", "Created"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


FINISHED_EXPERIMENT_STATUSES = frozenset(
    {ExperimentStatus.COMPLETED, ExperimentStatus.STOPPED, ExperimentStatus.FAILED}
)


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


# Higher rank may do everything a lower rank may.
ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.OWNER: 3}


class ExperimentQuerySet(models.QuerySet):
    def visible_to(self, user) -> "ExperimentQuerySet":
        """The experiments ``user`` may see: all for staff, their memberships otherwise."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(memberships__user=user)


class Experiment(models.Model):
    public_id = models.CharField(
        max_length=PUBLIC_ID_MAX_LENGTH, unique=True, default=new_experiment_id, editable=False
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="", max_length=10_000)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16,
        choices=ExperimentStatus.choices,
        default=ExperimentStatus.CREATED,
        db_index=True,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="experiments_created",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="research_experiments"
    )

    objects = ExperimentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.public_id})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_EXPERIMENT_STATUSES

    def role_of(self, user) -> str | None:
        """The user's role here; staff act as owners of every experiment."""
        if user is None or not user.is_authenticated:
            return None
        if user.is_staff:
            return Role.OWNER
        membership = self.memberships.filter(user=user).only("role").first()
        return membership.role if membership else None


class Membership(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="research_memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "user"], name="one_membership_per_user")]
        indexes = [models.Index(fields=["user", "experiment"])]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.experiment_id}"


class RuntimeSetting(models.Model):
    """One runtime setting (``experiments/runtime_config.py`` knows the keys and bounds)."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.key} = {self.value!r}"
