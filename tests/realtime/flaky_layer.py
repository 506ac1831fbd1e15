"""A channel layer that loses, repeats and reorders stream events, deterministically.

It is the project's in-memory layer with a seeded random choice per delivery of a stream
event (``stream.event``): drop it, deliver it twice, deliver it late (which reorders it
behind later ones), or deliver it normally. Other messages (access changes, the status
round trip) pass untouched, so only the stream's own repair is under test.

``blackhole`` drops every stream event from then on, and ``drop_next`` drops the next
that many deliveries: the tests use them for drops with nothing after them.
"""

import asyncio
import contextlib
import random
from collections import Counter

from realtime.groups import EVENT_MESSAGE
from realtime.layers import InMemoryChannelLayer


class FlakyChannelLayer(InMemoryChannelLayer):
    def __init__(
        self,
        *,
        seed: int = 1,
        drop: float = 0.1,
        duplicate: float = 0.1,
        delay: float = 0.1,
        max_delay_seconds: float = 0.05,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.random = random.Random(seed)
        self.drop = drop
        self.duplicate = duplicate
        self.delay = delay
        self.max_delay_seconds = max_delay_seconds
        self.blackhole = False
        self.drop_next = 0
        self.stats: Counter = Counter()
        self._late: set[asyncio.Task] = set()

    async def group_send(self, group, message):
        if message.get("type") != EVENT_MESSAGE:
            await super().group_send(group, message)
            return
        self.require_valid_group_name(group)
        for channel in list(self.groups.get(group, {})):
            await self._deliver(channel, message)

    async def _deliver(self, channel: str, message: dict) -> None:
        roll = self.random.random()
        if self.blackhole or self.drop_next > 0:
            self.drop_next = max(0, self.drop_next - 1)
            self.stats["dropped"] += 1
        elif roll < self.drop:
            self.stats["dropped"] += 1
        elif roll < self.drop + self.duplicate:
            self.stats["duplicated"] += 1
            await self.send(channel, message)
            await self.send(channel, message)
        elif roll < self.drop + self.duplicate + self.delay:
            self.stats["delayed"] += 1
            seconds = self.random.uniform(0.001, self.max_delay_seconds)
            task = asyncio.get_running_loop().create_task(self._send_later(seconds, channel, message))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        else:
            self.stats["sent"] += 1
            await self.send(channel, message)

    async def _send_later(self, seconds: float, channel: str, message: dict) -> None:
        await asyncio.sleep(seconds)
        await self.send(channel, message)

    async def settle(self) -> None:
        """Wait for every late delivery to be made."""
        while self._late:
            await asyncio.gather(*list(self._late), return_exceptions=True)

    def cancel_late(self) -> None:
        for task in list(self._late):
            with contextlib.suppress(RuntimeError):
                task.cancel()
