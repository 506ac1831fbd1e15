"""The in-memory channel layer used when ``REDIS_URL`` is unset (one process).

Channels' ``InMemoryChannelLayer`` walks every channel and every group member on every
``receive()`` and ``group_send()`` to expire old entries, so a broadcast to N receivers
costs about N² steps; it also deep-copies each message once per receiver. This subclass
sweeps at most once a second and copies a message whose values are all immutable with a
plain ``dict()``. Behaviour is otherwise Channels' own (capacity, expiry, groups).
"""

import asyncio
import contextlib
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

_IMMUTABLE = (str, int, float, bool, bytes, type(None))
SWEEP_INTERVAL_SECONDS = 1.0


def _copy(message: dict) -> dict:
    if all(isinstance(value, _IMMUTABLE) for value in message.values()):
        return dict(message)
    return deepcopy(message)


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last_sweep = 0.0

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._last_sweep < SWEEP_INTERVAL_SECONDS:
            return
        self._last_sweep = now
        super()._clean_expired()

    async def send(self, channel, message):
        # Channels deep-copies here; our messages are flat dicts of strings and numbers.
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, _copy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group, message):
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        # Sequentially, without a task per member: the sends never block.
        for channel in list(self.groups.get(group, {})):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)
