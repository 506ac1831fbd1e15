"""The watching process of the two-producer test (``test_producer_processes.py``).

``python -m tests.realtime.multiprocess_watcher <barrier dir> <count per producer>``, with
``DATABASE_URL`` naming a SQLite file (or PostgreSQL database) of its own. It migrates
that database, creates an experiment, opens sockets of every kind on the real ASGI
application, then starts two producer processes that write to the experiment at the
same moment while it writes too, and prints as JSON what each socket received.

Without ``REDIS_URL`` the layer is in-memory, so the other processes' events can only
arrive through the hub's sweep of the event store; with it, through Redis.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "research_site.settings")

import django

django.setup()

from channels.db import database_sync_to_async  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.core.management import call_command  # noqa: E402

from agents import reporting  # noqa: E402
from realtime.store import current_seq  # noqa: E402
from research_site.asgi import application  # noqa: E402
from tests.factories import make_user, started_experiment, token_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RECEIVE_TIMEOUT = 10.0


def prepare() -> dict:
    call_command("migrate", verbosity=0)
    alice, bob = make_user("alice"), make_user("bob")
    experiment, issued = started_experiment(alice, agents=5, members={bob: "viewer"})
    return {
        "experiment": experiment.public_id,
        "runs": [item.run for item in issued],
        "tokens": {"alice": token_for(alice), "bob": token_for(bob)},
    }


async def open_socket(path: str, token: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=[(b"authorization", f"Token {token}".encode())])
    accepted, _ = await communicator.connect(timeout=RECEIVE_TIMEOUT)
    assert accepted
    return communicator


async def open_sockets(setup: dict) -> dict:
    experiment_id, tokens = setup["experiment"], setup["tokens"]
    sockets = {}
    sockets["path since 0"] = await open_socket(f"/ws/research/experiments/{experiment_id}/?since=0", tokens["alice"])
    sockets["viewer path"] = await open_socket(f"/ws/research/experiments/{experiment_id}/", tokens["bob"])
    multiplexed = await open_socket("/ws/research/", tokens["alice"])
    await multiplexed.send_json_to({"type": "subscribe", "experiment_id": experiment_id})
    sockets["subscribed"] = multiplexed
    world = await open_socket("/ws/research/", tokens["alice"])
    await world.send_json_to({"type": "subscribe", "experiment_id": None})
    sockets["global"] = world
    return sockets


async def run_producers(barrier: Path, count: int, runs: list) -> tuple[dict, list[int]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    producers = []
    for name, group in (("a", runs[0:2]), ("b", runs[2:4])):
        producers.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.realtime.multiprocess_producer",
                str(barrier),
                name,
                str(count),
                *[run.public_id for run in group],
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
            )
        )
    deadline = time.monotonic() + 60
    while not all((barrier / f"{name}.ready").exists() for name in ("a", "b")):
        if time.monotonic() > deadline:
            raise SystemExit("producers did not start")
        await asyncio.sleep(0.01)
    (barrier / "go").touch()
    own = []
    for i in range(count // 2):  # this process writes too, through its own layer
        run = await database_sync_to_async(reporting.record_progress)(run=runs[4], progress_percent=float(i))
        own.append(run.progress_percent)
    results = {}
    for process in producers:
        out, _ = await process.communicate()
        assert process.returncode == 0, out
        result = json.loads(out.decode().strip().splitlines()[-1])
        results[result["name"]] = result["seqs"]
    return results, own


async def collect(communicator: WebsocketCommunicator, experiment_id: str, final: int) -> dict:
    """Seqs of the experiment's events up to ``final``, and anything unexpected."""
    seqs, unexpected = [], []
    while not seqs or seqs[-1] < final:
        message = await communicator.receive_json_from(timeout=RECEIVE_TIMEOUT)
        if message["type"] == "event" and message["experiment_id"] == experiment_id:
            seqs.append(message["seq"])
        elif message["type"] not in ("snapshot", "subscribed", "heartbeat"):
            unexpected.append(message)
    if not await communicator.receive_nothing(timeout=0.5):
        unexpected.append(await communicator.receive_json_from())
    return {"seqs": seqs, "unexpected": unexpected}


async def main(barrier: Path, count: int) -> None:
    setup = await database_sync_to_async(prepare)()
    experiment_id = setup["experiment"]
    start = await database_sync_to_async(current_seq)(experiment_id)
    sockets = await open_sockets(setup)
    producers, _own = await run_producers(barrier, count, setup["runs"])
    final = await database_sync_to_async(current_seq)(experiment_id)
    collected = await asyncio.gather(*(collect(c, experiment_id, final) for c in sockets.values()))
    received = dict(zip(sockets, collected, strict=True))
    for communicator in sockets.values():
        await communicator.disconnect()
    print(json.dumps({"start": start, "final": final, "producers": producers, "received": received}))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
