"""A bare ``websockets`` broadcast server: the practical limit of Python for this job.

It does only what a broadcast needs: a snapshot with the current seq on connect, then
every event to every client with ``websockets.broadcast`` (framed once, written to each
socket). A control connection asks it to produce ``count`` events at ``rate`` a second;
the events look like Research Engine's (same fields, similar size), with a timestamp
taken when each is produced.

    python -m realtime.loadtest.bare_server --port 8765
"""

import argparse
import asyncio
import gc
import json
import time
from datetime import UTC, datetime

from websockets.asyncio.server import broadcast, serve

clients: set = set()
state = {"seq": 0}


def event_text(seq: int) -> str:
    timestamp = datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z"
    return json.dumps(
        {
            "type": "event",
            "id": seq,
            "seq": seq,
            "event_type": "agent_progress",
            "experiment_id": "exp_bareBroadcastServer01",
            "run_id": "run_bareBroadcastServer01",
            "data": {
                "run_id": "run_bareBroadcastServer01",
                "agent_type": "claude_code",
                "progress_percent": round(seq % 100 + 0.5, 1),
                "current_action": f"Implementing step {seq}",
                "metrics": {"tokens_used": 15000 + seq, "cost": 0.75, "elapsed_time": 300.0},
            },
            "timestamp": timestamp,
        },
        separators=(",", ":"),
    )


async def produce(rate: float, count: int) -> int:
    start = time.perf_counter()
    for i in range(count):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        state["seq"] += 1
        broadcast(clients, event_text(state["seq"]))
    return state["seq"]


async def handler(websocket):
    if websocket.request.path.startswith("/control"):
        async for text in websocket:
            command = json.loads(text)
            if command.get("type") == "produce":
                end = await produce(float(command["rate"]), int(command["count"]))
                await websocket.send(json.dumps({"type": "produced", "end_seq": end}))
        return
    await websocket.send(json.dumps({"type": "snapshot", "seq": state["seq"]}))
    clients.add(websocket)
    try:
        await websocket.wait_closed()
    finally:
        clients.discard(websocket)


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, compression=None, max_size=2**16, ping_interval=None, backlog=4096):
        gc.freeze()
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.host, arguments.port))
