"""Per-socket message rate limit: a token bucket, refilled at ``ws_messages_per_second``
with bursts up to ``WS_BURST_FACTOR`` times that. A socket that runs dry is closed 4408."""

import time

from experiments.runtime_config import WS_BURST_FACTOR

CLOSE_FLOOD = 4408


class TokenBucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate_per_second: float):
        self.rate = float(rate_per_second)
        self.capacity = self.rate * WS_BURST_FACTOR
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def set_rate(self, rate_per_second: float) -> None:
        """A changed ``ws_messages_per_second``; a lower burst caps what is left at once."""
        self._refill()
        self.rate = float(rate_per_second)
        self.capacity = self.rate * WS_BURST_FACTOR
        self.tokens = min(self.tokens, self.capacity)

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
