"""The two channels-redis layers side by side, without daphne: what the layer itself costs.

    .venv/bin/python -m tests.bench.layers            # --redis redis://127.0.0.1:6379/0

A sender process ``group_send``s event-sized messages (about 600 bytes of text, as the
hub receives them) to a group whose one member is a channel of a receiver process, as a
daphne process's hub is (one member per process, see ``realtime/hub.py``). Each layer is
built from the project's own settings (``CHANNEL_LAYER_BACKEND`` picks it), so capacity,
expiry and pool size are the ones deployed. Three scenarios per layer:

- steady: 1,000 messages/s for 5 s: latency send → receive (p50/p99/max);
- flat out: 20,000 messages sent as fast as one sender can: messages/s sent and received;
- busy receiver: the receiver's event loop is blocked for 3 s (a long fan-out, a GC
  pause) while 5,000 messages are sent at 2,000/s; what arrives afterwards, and what is
  lost.

Prints a Markdown table. Not a test: pytest does not collect it.
"""

import argparse
import asyncio
import itertools
import multiprocessing
import os
import statistics
import time
import uuid

LAYERS = {
    "RedisPubSubChannelLayer": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "RedisChannelLayer": "channels_redis.core.RedisChannelLayer",
}
GROUP = "bench-layers"
TEXT = "x" * 560  # about the size of a serialized agent_progress event


def _layer(backend: str, redis_url: str, prefix: str):
    os.environ.update(
        {
            "REDIS_URL": redis_url,
            "CHANNEL_LAYER_BACKEND": backend,
            "CHANNEL_LAYER_PREFIX": prefix,
            "DJANGO_SETTINGS_MODULE": "research_site.settings",
        }
    )
    import django

    django.setup()
    from channels.layers import get_channel_layer

    return get_channel_layer()


def receiver_main(backend, redis_url, prefix, expected, block_after, block_seconds, ready, results):
    async def run():
        layer = _layer(backend, redis_url, prefix)
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        ready.put(True)
        latencies, seqs = [], []
        first = last = None
        while len(seqs) < expected:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=5.0)
            except TimeoutError:
                break  # nothing for 5 s: the rest was lost
            now = time.time()
            first = first or now
            last = now
            latencies.append((now - message["t"]) * 1000.0)
            seqs.append(message["seq"])
            if block_after is not None and len(seqs) == block_after:
                time.sleep(block_seconds)  # the whole event loop stops, as under a long fan-out
        await layer.group_discard(GROUP, channel)
        results.put(
            {
                "received": len(seqs),
                "lost": expected - len(set(seqs)),
                "duplicated": len(seqs) - len(set(seqs)),
                "out_of_order": sum(1 for a, b in itertools.pairwise(seqs) if b < a),
                "p50_ms": statistics.median(latencies) if latencies else None,
                "p99_ms": sorted(latencies)[int(0.99 * (len(latencies) - 1))] if latencies else None,
                "max_ms": max(latencies, default=None),
                "receive_seconds": (last - first) if first and last else None,
            }
        )

    asyncio.run(run())


async def _send(layer, count: int, rate: float | None) -> float:
    start = time.perf_counter()
    for seq in range(count):
        if rate:
            delay = start + seq / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await layer.group_send(GROUP, {"type": "research.event", "text": TEXT, "seq": seq, "t": time.time()})
    return time.perf_counter() - start


def sender_main(backend, redis_url, prefix, count, rate, results):
    layer = _layer(backend, redis_url, prefix)
    results.put(asyncio.run(_send(layer, count, rate)))


def scenario(backend: str, redis_url: str, count: int, rate: float | None, block_after=None, block_seconds=0.0):
    """One receiver and one sender process, each with its own layer built from settings."""
    prefix = f"bench-layers-{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    process = context.Process(
        target=receiver_main,
        args=(backend, redis_url, prefix, count, block_after, block_seconds, ready, results),
    )
    process.start()
    ready.get(timeout=60)
    sent = context.Queue()
    sender = context.Process(target=sender_main, args=(backend, redis_url, prefix, count, rate, sent))
    sender.start()
    send_seconds = sent.get(timeout=120)
    outcome = results.get(timeout=120)
    sender.join(timeout=30)
    process.join(timeout=30)
    outcome["sent_per_s"] = round(count / send_seconds)
    if outcome["receive_seconds"]:
        outcome["received_per_s"] = round(outcome["received"] / max(outcome["receive_seconds"], send_seconds))
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("\n| layer | scenario | sent/s | received | lost | dup | ooo | p50 ms | p99 ms | max ms | received/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cases = [
        ("steady 1,000/s × 5 s", {"count": 5000, "rate": 1000.0}),
        ("flat out, 20,000", {"count": 20000, "rate": None}),
        (
            "busy receiver (3 s), 5,000 at 2,000/s",
            {"count": 5000, "rate": 2000.0, "block_after": 10, "block_seconds": 3},
        ),
    ]
    for name, backend in LAYERS.items():
        for label, options in cases:
            row = scenario(backend, args.redis, **options)

            def cell(value):
                return "—" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))

            print(
                f"| {name} | {label} | {row['sent_per_s']} | {row['received']} | {row['lost']} | "
                f"{row['duplicated']} | {row['out_of_order']} | {cell(row['p50_ms'])} | {cell(row['p99_ms'])} | "
                f"{cell(row['max_ms'])} | {cell(row.get('received_per_s'))} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
