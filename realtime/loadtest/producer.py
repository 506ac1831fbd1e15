"""Producers: changes at a fixed rate, through Research Engine's public REST API (each
progress report is one committed change and one event) or the bare server's control
socket."""

import asyncio
import json
import time

import httpx
from websockets.asyncio.client import connect

MAX_IN_FLIGHT = 64


async def produce_reports(base_url: str, run_id: str, token: str, rate: float, count: int) -> dict:
    """``count`` progress reports at ``rate`` a second; returns counts of ok and failed."""
    url = f"{base_url}/api/research/agents/{run_id}/progress"
    headers = {"Authorization": f"Bearer {token}"}
    semaphore = asyncio.Semaphore(MAX_IN_FLIGHT)
    outcome = {"ok": 0, "failed": 0}
    limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            async with semaphore:
                body = {
                    "progress_percent": round(i % 100 + 0.5, 1),
                    "current_action": f"Implementing step {i}",
                    "metrics": {"tokens_used": 15000 + i, "cost": 0.75, "elapsed_time": 300.0},
                }
                try:
                    response = await client.post(url, json=body)
                    outcome["ok" if response.status_code == 200 else "failed"] += 1
                except httpx.HTTPError:
                    outcome["failed"] += 1

        start = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return outcome


async def produce_bare(ws_url: str, rate: float, count: int) -> int:
    async with connect(f"{ws_url}/control", ping_interval=None, compression=None) as websocket:
        await websocket.send(json.dumps({"type": "produce", "rate": rate, "count": count}))
        reply = json.loads(await websocket.recv())
        return reply["end_seq"]
