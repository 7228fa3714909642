"""An in-process token-bucket rate limiter.

It limits per process, so it only serves limits that are per process by nature: the local
gateway (one process) uses it per token and per client address. On AWS each warm Lambda container
would have its own, so no function uses it: the HttpApi's throttling (template.yaml) caps load, and
the per-source limits on token issue by admin secret are shared buckets in Postgres
(stage1.auth.buckets, the same rule), one budget for every container.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict


class RateLimiter:
    """`rate` tokens per second refill each key's bucket up to `burst`; a request takes one."""

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, stamp)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def hit(self, key: str, cost: float = 1.0) -> int:
        """Take `cost` from the key's bucket. 0 if allowed, else the whole seconds to wait (Retry-After)."""
        with self._lock:
            now = time.monotonic()
            tokens = self._level(key, now)
            if tokens >= cost:
                self._store(key, tokens - cost, now)
                return 0
            self._store(key, tokens, now)
            return max(1, math.ceil((cost - tokens) / self.rate))

    def wait(self, key: str, cost: float = 1.0) -> int:
        """Like `hit` without taking anything: 0 if a request would pass now."""
        with self._lock:
            tokens = self._level(key, time.monotonic())
        return 0 if tokens >= cost else max(1, math.ceil((cost - tokens) / self.rate))

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:  # forget the least recently seen (a full bucket)
            self._buckets.popitem(last=False)
