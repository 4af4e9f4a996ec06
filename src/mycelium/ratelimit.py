"""Token buckets per key (a source address, a node), sans-I/O: callers pass ``now``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

#: Keys remembered; the least recently seen is forgotten first (it comes back with a full
#: bucket, which only ever lets a forgotten key send its burst again).
MAX_KEYS = 4096


class KeyedRateLimiter:
    """At most ``burst`` events at once per key, refilled at ``rate`` events per second."""

    def __init__(self, burst: float, rate: float, max_keys: int = MAX_KEYS) -> None:
        if burst < 1 or rate <= 0 or max_keys < 1:
            raise ValueError("burst >= 1, rate > 0 and max_keys >= 1 are required")
        self.burst = burst
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self.refused = 0

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token for ``key``; False (and counted) when its bucket is empty."""
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        else:
            self.refused += 1
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed
