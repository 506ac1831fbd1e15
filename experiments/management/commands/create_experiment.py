"""``manage.py create_experiment``: an experiment with N runs, their tokens printed once.

    manage.py create_experiment "Refactor billing" --agents 3 --agent-type claude_code --owner alice --start

Each run's token is printed here and nowhere else (only its hash is stored); give each
agent its line of ``RESEARCH_RUN_ID`` / ``RESEARCH_RUN_TOKEN``. A lost token is replaced
with ``POST /api/research/agents/<run_id>/token``.
"""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from agents.api.serializers import RunSpecSerializer
from experiments import lifecycle
from experiments.management.database import require_migrated


class Command(BaseCommand):
    help = "Create an experiment with N agent runs and print their tokens (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--agents", type=int, default=1, help="How many runs (default 1).")
        parser.add_argument("--agent-type", default="claude_code", help="Kind of agent (default %(default)s).")
        parser.add_argument("--owner", required=True, help="Username of the owner.")
        parser.add_argument("--description", default="")
        parser.add_argument("--config", default="{}", help="The experiment's config, as a JSON object.")
        parser.add_argument("--start", action="store_true", help="Start it at once (runs become starting).")
        parser.add_argument("--json", action="store_true", help="Print one JSON document instead.")

    def handle(self, *args, **options):
        require_migrated()
        name = options["name"].strip()
        if not name or len(name) > 200:
            raise CommandError("The name is 1 to 200 characters.")
        if not 1 <= options["agents"] <= 1000:
            raise CommandError("--agents is between 1 and 1000.")
        spec = RunSpecSerializer(data={"agent_type": options["agent_type"]})
        if not spec.is_valid():
            raise CommandError(f"--agent-type: {'; '.join(spec.errors['agent_type'])}")
        agent_type = spec.validated_data["agent_type"]
        try:
            config = json.loads(options["config"])
        except ValueError as exc:
            raise CommandError(f"--config is not JSON: {exc}") from None
        if not isinstance(config, dict):
            raise CommandError("--config must be a JSON object.")
        owner = get_user_model().objects.filter(username=options["owner"]).first()
        if owner is None:
            raise CommandError(f"No user named {options['owner']!r}.")

        experiment, issued = lifecycle.create_experiment(
            name=name,
            description=options["description"],
            config=config,
            by=owner,
            agents=[
                lifecycle.RunSpec(agent_type=agent_type, name=f"{agent_type}-{i + 1}") for i in range(options["agents"])
            ],
        )
        if options["start"]:
            experiment = lifecycle.start_experiment(experiment=experiment, by=owner)

        if options["json"]:
            body = {
                "id": experiment.public_id,
                "name": experiment.name,
                "status": experiment.status,
                "runs": [{"id": item.run.public_id, "name": item.run.name, "token": item.token} for item in issued],
            }
            self.stdout.write(json.dumps(body, indent=2))
            return
        self.stdout.write(
            self.style.SUCCESS(f"Created {experiment.public_id} ({experiment.status}): {name}, owner {owner}")
        )
        self.stdout.write("Run tokens (shown only now; re-issue with POST /api/research/agents/<run_id>/token):")
        for item in issued:
            self.stdout.write(f"  RESEARCH_RUN_ID={item.run.public_id} RESEARCH_RUN_TOKEN={item.token}")
