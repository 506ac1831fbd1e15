"""``manage.py run_demo``: what ``make run`` starts.

Creates the demo login (and prints it), seeds a running demo experiment, serves the
project with daphne on ``PORT`` (default 8000) and runs ``simulate_experiment`` beside it
so the dashboard shows agents streaming and a plan waiting for approval within seconds.
Ctrl-C stops both.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from experiments import lifecycle
from experiments.models import Experiment, ExperimentStatus

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-research-engine"  # noqa: S105 (printed on purpose: a local demo login)
DEMO_NAME = "Demo: four coding agents refactor the billing service"
DEMO_AGENTS = [
    ("claude_code", "Claude Code"),
    ("codex", "Codex"),
    ("aider", "Aider"),
    ("swe_agent", "SWE-agent"),
]
HEALTH_TIMEOUT_SECONDS = 120


def daphne_command(port: int, host: str, access_log: str) -> list[str]:
    limit = str(settings.REALTIME["MAX_MESSAGE_BYTES"])
    return [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        host,
        "-p",
        str(port),
        "--websocket-max-frame-size",
        limit,
        "--websocket-max-message-size",
        limit,
        "--access-log",
        access_log,
        "research_site.asgi:application",
    ]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the dashboard with daphne and stream a simulated demo experiment."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--no-simulation", action="store_true", help="Serve only.")
        parser.add_argument(
            "--access-log",
            default="demo-access.log",
            help="daphne's access log (default %(default)s; - for the terminal, where it buries the progress bar).",
        )

    def handle(self, *args, **options):
        # Ctrl-C and SIGTERM (a supervisor, `kill`) stop the demo, children included. Both are
        # set here: a process started in the background by a shell inherits SIGINT ignored,
        # and Python then leaves it so.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        port, host = options["port"], options["host"]
        user = self._demo_user()
        experiment = self._demo_experiment(user)
        url = f"http://{host}:{port}"
        server = subprocess.Popen(daphne_command(port, host, options["access_log"]))
        children = [server]
        try:
            self._wait_for_health(url, server)
            self.stdout.write(self.style.SUCCESS(f"\nResearch Engine is running at {url}/"))
            self.stdout.write(f"  Log in as  {DEMO_USERNAME} / {DEMO_PASSWORD}")
            self.stdout.write(f"  Demo experiment: {url}/experiments/{experiment.public_id}/")
            self.stdout.write(f"  API docs: {url}/api/docs/   Admin: {url}/admin/")
            if options["access_log"] != "-":
                self.stdout.write(f"  Requests are logged to {options['access_log']}.")
            self.stdout.write("  Ctrl-C stops the server and the simulated agents.\n")
            if not options["no_simulation"]:
                simulator = subprocess.Popen(
                    [
                        sys.executable,
                        "manage.py",
                        "simulate_experiment",
                        "--url",
                        url,
                        "--username",
                        DEMO_USERNAME,
                        "--password",
                        DEMO_PASSWORD,
                        "--experiment",
                        experiment.public_id,
                    ]
                )
                children.append(simulator)
            server.wait()
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            # SIGTERM: daphne (Twisted) always handles it, SIGINT only when it was not ignored
            # at start; simulate_experiment stops its agents on either.
            for child in reversed(children):
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in reversed(children):
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()

    def _demo_user(self):
        users = get_user_model()
        user, created = users.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created or not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = True
            user.save()
        return user

    def _demo_experiment(self, user) -> Experiment:
        """A fresh running demo experiment (earlier demo runs are kept, finished)."""
        for old in Experiment.objects.filter(name=DEMO_NAME, status=ExperimentStatus.RUNNING):
            lifecycle.stop_experiment(experiment=old, by=user)
        experiment, _issued = lifecycle.create_experiment(
            name=DEMO_NAME,
            description="Simulated agents stream progress, tokens, cost, metrics and logs; "
            "one submits a plan that waits for your approval.",
            config={"repository": "acme/billing", "goal": "extract the invoicing module", "max_cost": 25},
            agents=[lifecycle.RunSpec(agent_type=kind, name=name) for kind, name in DEMO_AGENTS],
            by=user,
        )
        return lifecycle.start_experiment(experiment=experiment, by=user)

    def _wait_for_health(self, url: str, server: subprocess.Popen) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError(f"daphne exited with code {server.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise CommandError(f"daphne did not answer {url}/health within {HEALTH_TIMEOUT_SECONDS} s")
