"""What one router accepts from its neighbours, bounded.

The reference bounds none of it. These limits hold a network of the reference's claimed scale
(100 000 nodes) with room to spare, and stop a single neighbour from growing our table, our CPU
time or our send queues without bound: beyond a limit the TLV is dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouterLimits:
    #: Subnets in the route table (like BGP's maximum-prefix, for the whole table).
    max_routes: int = 500_000
    #: Route entries one neighbour may hold (its share of the table).
    max_routes_per_neighbour: int = 250_000
    #: IHU answers per neighbour: per second, and the burst (Hellos come every few seconds).
    ihu_rate: float = 2.0
    ihu_burst: int = 10
    #: Route requests and seqno requests handled per neighbour, each kind.
    request_rate: float = 100.0
    request_burst: int = 500
    #: Route requests we originate (one per unknown destination a packet asks for), for our own
    #: packets and, separately, for packets we forward.
    origin_rate: float = 100.0
    origin_burst: int = 500
    #: Full-table dumps (wildcard route requests; the reference never sends them): at most one
    #: per neighbour per interval, and this many per second in all.
    dump_interval: float = 30.0
    dump_rate: float = 0.2
    dump_burst: int = 3


class TokenBucket:
    """``rate`` events per second on average, ``burst`` at once; time is passed in."""

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """One event now: True if the bucket allows it."""
        tokens = self._tokens + (now - self._stamp) * self._rate
        self._stamp = now
        if tokens > self._burst:
            tokens = self._burst
        if tokens < 1.0:
            self._tokens = tokens
            return False
        self._tokens = tokens - 1.0
        return True
