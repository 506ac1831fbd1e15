"""Domain signals of experiments, sent by ``experiments/lifecycle.py`` and friends.

Each is sent inside the transaction that made the change, once the models are saved.
``realtime/receivers.py`` records every one as an ``Event`` and streams it after commit;
a rolled-back change therefore records and streams nothing.
"""

from django.dispatch import Signal

# experiment, runs (list of AgentRun), by (User | None)
experiment_created = Signal()
# experiment, changes ({field: new value}), by
experiment_updated = Signal()
# experiment, runs (the runs now starting), by
experiment_started = Signal()
# experiment, by (runs are stopped first, each with agents.signals.run_stopped)
experiment_stopped = Signal()
# experiment: finished by itself when its last run reached a terminal status
experiment_finished = Signal()
# experiment (still readable; deleted right after), by
experiment_deleted = Signal()
# experiment, user, role (None when removed), by
membership_changed = Signal()
# values (the whole config), changed ({key: new value}), by
runtime_config_changed = Signal()
