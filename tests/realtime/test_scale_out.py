"""Scale-out on Redis with real processes: two daphne servers share the stream, a third
process produces the changes, and neither a killed server nor a restarted Redis costs a
client a single event.

These tests start their own redis-server on a free port (so killing it disturbs nothing
else) and share one SQLite file database between the processes.
"""

import asyncio
import json
import shutil
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests import services
from tests.realtime.processes import (
    Daphne,
    PrivateRedis,
    base_env,
    copy_database,
    migrate_template,
    run_script,
    start_script,
)

pytestmark = [pytest.mark.redis, pytest.mark.daphne]

SETUP = """
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from experiments import lifecycle
from agents import reporting
user = get_user_model().objects.create_user("scale", password="x")
experiment, issued = lifecycle.create_experiment(
    name="scale-out", by=user, agents=[lifecycle.RunSpec(agent_type="probe")]
)
lifecycle.start_experiment(experiment=experiment, by=user)
run = issued[0].run
reporting.record_progress(run=run, progress_percent=0)
print(json.dumps({"token": Token.objects.create(user=user).key, "experiment": experiment.public_id,
                  "run_pk": run.pk}))
"""

PRODUCE = """
import sys, time
from agents import reporting
from agents.models import AgentRun
run = AgentRun.objects.get(pk={run_pk})
for i in range({count}):
    reporting.record_progress(run=run, progress_percent=(i % 100) + 0.5, current_action=f"step {{i}}")
    print(i + 1, flush=True)
    time.sleep({interval})
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    if not shutil.which("redis-server"):
        services.need(False, "redis-server is not installed")
    return migrate_template(tmp_path_factory.mktemp("scale-template"))


@pytest.fixture
def cluster(template, tmp_path):
    """A private Redis, two daphne servers on it, and an experiment with a running run."""
    redis = PrivateRedis().start()
    database = copy_database(template, tmp_path)
    env = base_env(database, redis.url)
    setup = run_script(env, SETUP)
    servers = [Daphne(env).start(), Daphne(env).start()]
    yield {"redis": redis, "servers": servers, "env": env, **setup}
    for server in servers:
        server.stop()
    redis.stop()


class Follower:
    """A dashboard client that follows one experiment, moving to another server with
    ``?since=`` whenever its connection dies."""

    def __init__(self, cluster, server_index: int):
        self.cluster = cluster
        self.server_index = server_index
        self.seqs: list[int] = []
        self.start_seq: int | None = None
        self.reconnects = 0

    def url(self) -> str:
        server = self.cluster["servers"][self.server_index]
        since = f"?since={self.seqs[-1] if self.seqs else self.start_seq}" if self.start_seq is not None else ""
        return f"{server.ws_url}/ws/research/experiments/{self.cluster['experiment']}/{since}"

    async def follow(self, until_seq: dict, ready: asyncio.Event) -> None:
        headers = [("Authorization", f"Token {self.cluster['token']}")]
        while True:
            try:
                async with connect(self.url(), additional_headers=headers, open_timeout=10) as websocket:
                    async for text in websocket:
                        message = json.loads(text)
                        if message["type"] == "snapshot" and self.start_seq is None:
                            self.start_seq = message["seq"]
                            ready.set()
                        elif message["type"] == "event":
                            self.seqs.append(message["seq"])
                        target = until_seq.get("seq")
                        if target is not None and self.seqs and self.seqs[-1] >= target:
                            return
            except (ConnectionClosed, OSError):
                pass
            # The server went away: go to another one and resume after the last seq.
            self.reconnects += 1
            self.server_index = (self.server_index + 1) % len(self.cluster["servers"])
            await asyncio.sleep(0.1)


async def _stream(cluster, *, count: int, interval: float, during) -> list[Follower]:
    followers = [Follower(cluster, i % 2) for i in range(8)]
    until: dict = {}
    ready = [asyncio.Event() for _ in followers]
    tasks = [asyncio.create_task(f.follow(until, r)) for f, r in zip(followers, ready, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
    start = followers[0].start_seq
    assert all(f.start_seq == start for f in followers)
    producer = start_script(cluster["env"], PRODUCE.format(run_pk=cluster["run_pk"], count=count, interval=interval))
    await during(followers, producer)
    assert await asyncio.to_thread(producer.wait, 120) == 0
    until["seq"] = start + count
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    for follower in followers:
        assert follower.seqs == list(range(start + 1, start + count + 1)), (
            f"follower on server {follower.server_index} got {len(follower.seqs)} events, "
            f"duplicates or gaps: {sorted(set(range(start + 1, start + count + 1)) ^ set(follower.seqs))[:10]}"
        )
    return followers


async def _wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.02)


@pytest.mark.django_db(transaction=True)
async def test_clients_on_two_servers_get_every_event_of_a_third_process_once_in_order(cluster):
    async def nothing(followers, producer):
        return None

    await _stream(cluster, count=200, interval=0.005, during=nothing)


@pytest.mark.django_db(transaction=True)
async def test_clients_of_a_killed_server_resume_on_the_other_with_since_and_miss_nothing(cluster):
    async def kill_first_server(followers, producer):
        # Mid-stream: some events out, most still to come.
        await _wait_until(lambda: all(len(f.seqs) >= 60 for f in followers))
        cluster["servers"][0].kill()

    followers = await _stream(cluster, count=300, interval=0.01, during=kill_first_server)
    moved = [f for f in followers if f.reconnects]
    assert len(moved) == 4, "every client of the killed server moved to the other one"


@pytest.mark.django_db(transaction=True)
async def test_servers_recover_from_a_redis_restart_and_clients_lose_nothing(cluster):
    async def restart_redis(followers, producer):
        await _wait_until(lambda: all(len(f.seqs) >= 60 for f in followers))
        cluster["redis"].kill()
        await asyncio.sleep(1.0)  # events keep being committed while Redis is down
        cluster["redis"].start()

    followers = await _stream(cluster, count=300, interval=0.01, during=restart_redis)
    assert not any(f.reconnects for f in followers), "the servers stayed up; sockets were not dropped"
