"""The event types of the contract; docs/websocket.md shows each one's data."""

EXPERIMENT_EVENT_TYPES = frozenset(
    {
        "experiment_created",
        "experiment_updated",
        "experiment_started",
        "experiment_stopped",
        "experiment_completed",
        "experiment_deleted",
        "agent_initialized",
        "agent_progress",
        "agent_completed",
        "agent_failed",
        "agent_stopped",
        "plan_ready",
        "approval_required",
        "plan_approved",
        "plan_rejected",
        "metrics_updated",
        "validation_completed",
        "log_appended",
        "error_occurred",
    }
)
SYSTEM_EVENT_TYPES = frozenset({"config_updated", "system_status"})
EVENT_TYPES = EXPERIMENT_EVENT_TYPES | SYSTEM_EVENT_TYPES
