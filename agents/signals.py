"""Domain signals of agent runs, sent inside the transaction that made the change.

``realtime/receivers.py`` records each as an ``Event`` and, for those the agent must hear
about (stop, plan decisions, timeout), pushes a control message to the agent socket.
"""

from django.dispatch import Signal

# run, by, reopened (bool: a finished experiment went back to running for it)
run_created = Signal()
# run: its first report moved it from starting to running
run_initialized = Signal()
# run
run_progressed = Signal()
# run
run_completed = Signal()
# run, reason ("agent_reported" | "approval_timeout")
run_failed = Signal()
# run, reason ("operator" | "experiment_stopped" | "plan_rejected"), by
run_stopped = Signal()
# run
plan_submitted = Signal()
# run, approved (bool), feedback (str), revise (bool), by
plan_decided = Signal()
# run, latest ({name: {"value", "step"}}), count (points stored)
metrics_recorded = Signal()
# run
validation_recorded = Signal()
# run, lines (the stored lines, as dicts), count
logs_appended = Signal()
