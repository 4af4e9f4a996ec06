"""A token bucket per key (a source address, a node), for at most ``max_keys`` keys; sans-I/O.

The buckets are ``routing.limits.TokenBucket``; the least recently seen key is forgotten first
(it comes back with a full bucket, which only ever lets a forgotten key send its burst again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from .routing.limits import TokenBucket

MAX_KEYS = 4096


class KeyedRateLimiter:
    """At most ``burst`` events at once per key, refilled at ``rate`` events per second."""

    def __init__(self, burst: int, rate: float, max_keys: int = MAX_KEYS) -> None:
        if burst < 1 or rate <= 0 or max_keys < 1:
            raise ValueError("burst >= 1, rate > 0 and max_keys >= 1 are required")
        self.burst = burst
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()
        self.refused = 0

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token for ``key``; False (and counted) when its bucket is empty."""
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.burst, now)
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.take(now):
            return True
        self.refused += 1
        return False
