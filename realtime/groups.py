"""Channel-layer group names, and the internal message types sent through them.

Events of an experiment go to ``experiment.<exp_id>``; every experiment event also goes
to ``experiments.all`` for sockets on the global stream; system events to
``research.system``; control messages for an agent to ``run.<run_id>``. Each serving
process joins these groups once (``realtime/hub.py``), not once per socket.
"""

GLOBAL_GROUP = "experiments.all"
SYSTEM_GROUP = "research.system"

# Layer message types (the consumer never receives these directly; the hub does).
EVENT_MESSAGE = "stream.event"
ACCESS_MESSAGE = "stream.access"
CONTROL_MESSAGE = "agent.control"


def experiment_group(experiment_id: str) -> str:
    return f"experiment.{experiment_id}"


def run_group(run_id: str) -> str:
    return f"run.{run_id}"
