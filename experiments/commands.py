"""The operator command grammar of ``POST command``.

    status
    start <exp_id>          stop <exp_id>
    approve <run_id> [feedback …]
    reject <run_id> [feedback …]

Each command calls the same service as its REST endpoint, with the same role checks.
"""

from dataclasses import dataclass

from agents import approval
from agents.models import AgentRun
from experiments import lifecycle
from experiments.ids import looks_like
from experiments.models import Experiment

GRAMMAR = (
    "Commands: 'status', 'start <exp_id>', 'stop <exp_id>', "
    "'approve <run_id> [feedback]', 'reject <run_id> [feedback]'."
)
MAX_COMMAND_CHARS = 10_000


class CommandError(ValueError):
    """The text is not a command of the grammar (answered 400)."""


@dataclass(frozen=True)
class Command:
    action: str
    target: str | None
    feedback: str = ""


def parse(text: object) -> Command:
    if not isinstance(text, str) or not text.strip():
        raise CommandError("Send a command as a non-empty string. " + GRAMMAR)
    if len(text) > MAX_COMMAND_CHARS:
        raise CommandError(f"A command is at most {MAX_COMMAND_CHARS} characters.")
    parts = text.strip().split(maxsplit=2)
    verb = parts[0].lower()
    if verb == "status":
        if len(parts) > 1:
            raise CommandError("'status' takes no argument.")
        return Command("status", None)
    if verb in ("start", "stop"):
        if len(parts) != 2 or not looks_like(parts[1], "exp"):
            raise CommandError(f"'{verb}' takes one experiment id, as in '{verb} exp_…'.")
        return Command(verb, parts[1])
    if verb in ("approve", "reject"):
        if len(parts) < 2 or not looks_like(parts[1], "run"):
            raise CommandError(f"'{verb}' takes a run id, as in '{verb} run_… [feedback]'.")
        return Command(verb, parts[1], parts[2].strip() if len(parts) > 2 else "")
    raise CommandError(f"Unknown command '{verb}'. " + GRAMMAR)


def find_experiment(user, public_id: str) -> Experiment | None:
    return Experiment.objects.visible_to(user).filter(public_id=public_id).first()


def find_run(user, public_id: str) -> AgentRun | None:
    visible = Experiment.objects.visible_to(user)
    return (
        AgentRun.objects.select_related("experiment", "retry_of")
        .filter(public_id=public_id, experiment__in=visible)
        .first()
    )


def run_experiment_command(command: Command, experiment: Experiment, by) -> Experiment:
    service = {"start": lifecycle.start_experiment, "stop": lifecycle.stop_experiment}[command.action]
    return service(experiment=experiment, by=by)


def run_plan_command(command: Command, run: AgentRun, by) -> AgentRun:
    return approval.decide_plan(run=run, by=by, approved=command.action == "approve", feedback=command.feedback)
