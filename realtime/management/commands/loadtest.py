"""``manage.py loadtest``: N WebSocket clients × M events/s for T seconds.

Against a running server (``--url``) or a daphne it starts itself (``--server inmemory``
or ``--server redis``), and, in the same run, against a bare ``websockets`` broadcast
server it also starts, so the ratio to Python's practical limit is measured under the
same conditions. Clients run in separate processes. Changes are produced through the
public REST API (a progress report is one committed change and one event); latency is
from the event's timestamp (when the change was recorded) to its arrival at a client.

    manage.py loadtest --clients 100 --rate 20 --duration 10
    manage.py loadtest --grid                  # the grid of docs/BENCHMARKS.md
    manage.py loadtest --idle 10000 --no-bare  # memory per idle socket at 10,000 sockets
"""

import json
import os
import secrets
import time

import httpx
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token
from tqdm import tqdm

from experiments import lifecycle, runtime_config
from experiments.management.database import require_migrated
from experiments.models import Experiment
from realtime.loadtest import producer
from realtime.loadtest.runner import Target, find_max_rate, idle_memory, run_cell
from realtime.loadtest.servers import start_bare, start_daphne

GRID = [(100, 20), (100, 100), (1000, 5), (1000, 20), (1000, 50)]
MAX_RATE_LADDER = [20, 30, 40, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200]
LOADTEST_USER = "loadtest"
LOADTEST_NAME = "loadtest"


class Command(BaseCommand):
    help = "Measure live-stream throughput, latency, exactness and memory per socket."

    def add_arguments(self, parser):
        parser.add_argument("--url", help="A running server (http://host:port); default: start daphne.")
        parser.add_argument("--username", help="With --url: a staff user to set up with.")
        parser.add_argument("--password")
        parser.add_argument("--server", choices=["inmemory", "redis"], default="inmemory")
        parser.add_argument("--clients", type=int, default=100)
        parser.add_argument("--rate", type=float, default=20.0, help="Events per second.")
        parser.add_argument("--duration", type=float, default=10.0, help="Seconds per cell.")
        parser.add_argument("--processes", type=int, default=0, help="Client processes (default: by size).")
        parser.add_argument("--grid", action="store_true", help="Run the standard grid and the max-rate search.")
        parser.add_argument("--find-max", action="store_true", help="Search the highest sustainable rate.")
        parser.add_argument("--idle", type=int, default=0, help="Measure memory per idle socket with N sockets.")
        parser.add_argument("--no-bare", action="store_true", help="Skip the bare websockets server.")
        parser.add_argument("--bare-only", action="store_true")
        parser.add_argument("--json", help="Also write the results to this file.")

    def handle(self, *args, **options):
        if not (options["url"] or options["bare_only"]):
            require_migrated()  # the server it starts uses this database
        self.options = options
        self.results = {"cells": [], "max_rate": [], "idle": []}
        targets = []
        servers = []
        try:
            if not options["bare_only"]:
                ours, server = self._our_target()
                targets.append(ours)
                if server:
                    servers.append(server)
            if not options["no_bare"]:
                bare = start_bare()
                servers.append(bare)
                targets.append(
                    Target(
                        "bare websockets",
                        f"{bare.ws_url}/",
                        [],
                        lambda r, c: producer.produce_bare(bare.ws_url, r, c),
                        bare,
                    )
                )
            self._run(targets)
        finally:
            for server in servers:
                server.stop()
            self._cleanup()
        if options["json"]:
            with open(options["json"], "w") as handle:
                json.dump(self.results, handle, indent=2)
        self._print_summary()

    # Setting up our server ---------------------------------------------------------------

    def _our_target(self):
        if self.options["url"]:
            return self._remote_target(self.options["url"].rstrip("/")), None
        user = get_user_model().objects.get_or_create(username=LOADTEST_USER, defaults={"is_staff": True})[0]
        token = Token.objects.get_or_create(user=user)[0].key
        runtime_config.update_config(changes={"agent_rate_per_minute": 10_000_000}, by=user)
        experiment, issued = lifecycle.create_experiment(
            name=LOADTEST_NAME, by=user, agents=[lifecycle.RunSpec(agent_type="loadtest")]
        )
        lifecycle.start_experiment(experiment=experiment, by=user)
        # Measured as deployed: DEBUG off (no query log, no debug pages).
        env = {
            "BACKGROUND_TASKS": "1",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        if self.options["server"] == "redis":
            env["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        else:
            env["REDIS_URL"] = ""
        server = start_daphne(env=env)
        self.stdout.write(f"daphne ({self.options['server']} layer, pid {server.process.pid}) on {server.http_url}")
        return self._make_target(
            "Research Engine",
            server.http_url,
            token,
            experiment.public_id,
            issued[0].run.public_id,
            issued[0].token,
            server,
        ), server

    def _remote_target(self, base: str):
        if not self.options["username"]:
            raise CommandError("--url needs --username and --password (a staff user).")
        with httpx.Client(base_url=base, timeout=30) as client:
            response = client.post(
                "/api/research/auth/token",
                json={"username": self.options["username"], "password": self.options["password"]},
            )
            if response.status_code != 200:
                raise CommandError(f"Could not log in: {response.status_code} {response.text}")
            token = response.json()["token"]
            client.headers["Authorization"] = f"Token {token}"
            client.post("/api/research/config", json={"agent_rate_per_minute": 10_000_000})
            body = client.post(
                "/api/research/experiments", json={"name": LOADTEST_NAME, "agents": [{"agent_type": "loadtest"}]}
            ).json()
            client.post(f"/api/research/experiments/{body['id']}/start")
        self.remote_experiment = (base, token, body["id"])
        run = body["runs"][0]
        return self._make_target("Research Engine", base, token, body["id"], run["id"], run["token"], None)

    def _make_target(self, name, base, user_token, experiment_id, run_id, run_token, server):
        # The first report moves the run to running; every later one is one progress event.
        httpx.post(
            f"{base}/api/research/agents/{run_id}/progress",
            json={"progress_percent": 0},
            headers={"Authorization": f"Bearer {run_token}"},
            timeout=30,
        ).raise_for_status()
        ws_base = base.replace("http://", "ws://").replace("https://", "wss://")

        async def produce(rate: float, count: int) -> int:
            await producer.produce_reports(base, run_id, run_token, rate, count)
            async with httpx.AsyncClient(headers={"Authorization": f"Token {user_token}"}, timeout=30) as client:
                page = await client.get(
                    f"{base}/api/research/events", params={"experiment": experiment_id, "page_size": 1}
                )
                last = await client.get(
                    f"{base}/api/research/events",
                    params={"experiment": experiment_id, "page_size": 1, "page": page.json()["count"]},
                )
                return last.json()["results"][0]["seq"]

        return Target(
            name,
            f"{ws_base}/ws/research/experiments/{experiment_id}/",
            [("Authorization", f"Token {user_token}")],
            produce,
            server,
        )

    def _cleanup(self) -> None:
        remote = getattr(self, "remote_experiment", None)
        if remote:
            base, token, experiment_id = remote
            with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30) as client:
                client.post(f"/api/research/experiments/{experiment_id}/stop")
                deleted = client.delete(f"/api/research/experiments/{experiment_id}")
            if deleted.status_code != 204:
                self.stderr.write(f"Could not delete the load-test experiment {experiment_id}: {deleted.status_code}")
        if not self.options["url"]:
            for experiment in Experiment.objects.filter(name=LOADTEST_NAME):
                if experiment.status == "running":
                    lifecycle.stop_experiment(experiment=experiment, by=None)
                lifecycle.delete_experiment(experiment=experiment, by=None)

    # Running -----------------------------------------------------------------------------

    def _processes(self, clients: int) -> int:
        return self.options["processes"] or max(1, min(4, clients // 250 or 1))

    def _cell(self, target: Target, clients: int, rate: float):
        duration = self.options["duration"]
        with tqdm(
            total=duration,
            desc=f"{target.name}: {clients} × {rate:g}/s",
            unit="s",
            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s",
        ) as bar:

            def progress(elapsed):
                bar.n = elapsed
                bar.refresh()

            result = run_cell(target, clients, rate, duration, self._processes(clients), on_progress=progress)
        self.results["cells"].append(result.row())
        self._print_row(result.row())
        return result

    def _run(self, targets):
        options = self.options
        if options["idle"]:
            for target in targets:
                if target.server is None:
                    continue
                self.stdout.write(f"Holding {options['idle']} idle sockets on {target.name}…")
                row = idle_memory(target, options["idle"], self._processes(options["idle"]))
                self.results["idle"].append(row)
                self.stdout.write(json.dumps(row))
            if not (options["grid"] or options["find_max"]):
                return
        cells = GRID if options["grid"] else [(options["clients"], options["rate"])]
        for clients, rate in cells:
            for target in targets:
                self._cell(target, clients, rate)
                time.sleep(1)
        if options["grid"] or options["find_max"]:
            clients = 1000 if options["grid"] else options["clients"]
            for target in targets:
                best = find_max_rate(
                    target,
                    clients,
                    options["duration"],
                    self._processes(clients),
                    MAX_RATE_LADDER,
                    on_result=lambda r: (self.results["cells"].append(r.row()), self._print_row(r.row())),
                )
                row = best.row() if best else {"server": target.name, "clients": clients, "events_per_s": None}
                self.results["max_rate"].append(row)

    # Reporting ---------------------------------------------------------------------------

    def _print_row(self, row: dict) -> None:
        self.stdout.write(
            "{server:>16} {clients:>5} clients × {events_per_s:>6} ev/s: {deliveries_per_s:>7} deliveries/s, "
            "p50 {p50_ms} ms, p99 {p99_ms} ms, max {max_ms} ms, lost {lost}, dup {duplicated}, "
            "ooo {out_of_order}, connected {connected}, kept pace {kept_pace}, server CPU {server_cpu_percent}%".format(
                **row
            )
        )

    def _print_summary(self) -> None:
        results = self.results
        if results["cells"]:
            self.stdout.write(
                "\n| server | clients | events/s | deliveries/s | p50 ms | p99 ms | max ms "
                "| lost | dup | ooo | kept pace |"
            )
            self.stdout.write("|---|---|---|---|---|---|---|---|---|---|---|")
            for row in results["cells"]:
                self.stdout.write(
                    f"| {row['server']} | {row['clients']} | {row['events_per_s']:g} | {row['deliveries_per_s']} | "
                    f"{row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} | {row['lost']} | {row['duplicated']} | "
                    f"{row['out_of_order']} | {'yes' if row['kept_pace'] else 'no'} |"
                )
        if results["max_rate"]:
            self.stdout.write("\nHighest sustainable rate (p99 < 250 ms, nothing lost, kept pace):")
            for row in results["max_rate"]:
                self.stdout.write(
                    f"  {row['server']}: {row.get('events_per_s')} events/s × {row['clients']} "
                    f"= {row.get('deliveries_per_s')} deliveries/s"
                )
            ours = [r for r in results["max_rate"] if r["server"] == "Research Engine" and r.get("deliveries_per_s")]
            bare = [r for r in results["max_rate"] if r["server"] == "bare websockets" and r.get("deliveries_per_s")]
            if ours and bare:
                self.stdout.write(
                    f"  ratio: {ours[0]['deliveries_per_s'] / bare[0]['deliveries_per_s']:.2f}× the bare server"
                )
        for row in results["idle"]:
            self.stdout.write(f"Idle: {row}")
