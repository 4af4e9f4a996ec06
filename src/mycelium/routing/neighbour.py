"""Neighbours: one per live connection, its Hello/IHU exchange and its RTT-based link cost
(docs/routing.md §3)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Generic

from ..wire.tlv import Hello, Ihu, Tlv
from .constants import DEFAULT_LINK_COST, HelloTimers
from .decisions import N
from .limits import RouterLimits, TokenBucket

DEFAULT_LIMITS = RouterLimits()


class Neighbour(Generic[N]):
    __slots__ = (
        "alive",
        "hello_seqno",
        "id",
        "ihus",
        "index",
        "last_dump",
        "last_hello_sent",
        "last_ihu_received",
        "route_requests",
        "rtt",
        "seqno_requests",
        "smoothed",
        "static_cost",
    )

    def __init__(
        self,
        neighbour_id: N,
        static_cost: int,
        now: float,
        index: int = 0,
        limits: RouterLimits = DEFAULT_LIMITS,
    ) -> None:
        self.id = neighbour_id
        #: The router's small-int handle, named by its route entries.
        self.index = index
        self.static_cost = static_cost
        self.smoothed = DEFAULT_LINK_COST
        #: The last RTT sample in ms (None before the first Hello is answered), for display.
        self.rtt: int | None = None
        # A new neighbour is not declared dead before its first Hello round.
        self.last_hello_sent = now
        self.last_ihu_received = now
        self.hello_seqno = 0
        self.alive = True
        # What this neighbour may ask of us (routing/limits.py).
        self.ihus = TokenBucket(limits.ihu_rate, limits.ihu_burst, now)
        self.route_requests = TokenBucket(limits.request_rate, limits.request_burst, now)
        self.seqno_requests = TokenBucket(limits.request_rate, limits.request_burst, now)
        self.last_dump = -math.inf

    def on_ihu(self, now: float) -> None:
        """An IHU answers our last Hello: the gap is one RTT sample, in truncated milliseconds."""
        # Whole microseconds first, so float noise (20.02 - 20.0 = 19.999..) cannot lose a ms.
        sample = (round((now - self.last_hello_sent) * 1_000_000) // 1000) & 0xFFFF
        self.smoothed = (self.smoothed * 9 + sample) // 10
        self.rtt = sample
        self.last_ihu_received = now

    def ihu(self, timers: HelloTimers) -> Ihu:
        """Our answer to its Hello: the link cost as we measure it."""
        return Ihu(min(self.link_cost, 0xFFFF), timers.ihu_interval_cs)

    @property
    def link_cost(self) -> int:
        return self.smoothed + self.static_cost

    def __repr__(self) -> str:
        return f"Neighbour({self.id!r}, cost={self.link_cost})"


def send_hellos(
    neighbours: Iterable[Neighbour[N]], out: list[tuple[N, Tlv]], timers: HelloTimers, now: float
) -> None:
    """One Hello to every neighbour; its IHU answer times the link."""
    interval = timers.interval_cs
    for n in neighbours:
        n.last_hello_sent = now
        out.append((n.id, Hello(n.hello_seqno, interval)))
        n.hello_seqno = (n.hello_seqno + 1) & 0xFFFF


def excuse_pause(neighbours: Iterable[Neighbour[N]], paused: float, now: float) -> None:
    """The node did not run for ``paused`` seconds and sent no Hellos meanwhile: move every
    neighbour's last IHU forward by that much, so that only silence outside the pause counts."""
    for n in neighbours:
        n.last_ihu_received = min(now, n.last_ihu_received + paused)


def silent(
    neighbours: Iterable[Neighbour[N]], timers: HelloTimers, now: float
) -> list[Neighbour[N]]:
    """Neighbours that have not answered a Hello for longer than the dead threshold."""
    return [n for n in neighbours if now - n.last_ihu_received > timers.dead_after]
