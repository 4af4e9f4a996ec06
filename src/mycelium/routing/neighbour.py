"""A neighbour (one live connection) and its RTT-based link cost (routing.md §3)."""

from __future__ import annotations

from collections.abc import Hashable

from .constants import DEFAULT_LINK_COST


class Neighbour:
    __slots__ = (
        "alive",
        "hello_seqno",
        "id",
        "index",
        "last_hello_sent",
        "last_ihu_received",
        "smoothed",
        "static_cost",
    )

    def __init__(
        self, neighbour_id: Hashable, static_cost: int, now: float, index: int = 0
    ) -> None:
        self.id = neighbour_id
        #: The router's small-int handle, named by its route entries.
        self.index = index
        self.static_cost = static_cost
        self.smoothed = DEFAULT_LINK_COST
        # A new neighbour is not declared dead before its first Hello round.
        self.last_hello_sent = now
        self.last_ihu_received = now
        self.hello_seqno = 0
        self.alive = True

    def on_ihu(self, now: float) -> None:
        """An IHU answers our last Hello: the gap is one RTT sample, in truncated milliseconds."""
        # Whole microseconds first, so float noise (20.02 - 20.0 = 19.999..) cannot lose a ms.
        sample = (round((now - self.last_hello_sent) * 1_000_000) // 1000) & 0xFFFF
        self.smoothed = (self.smoothed * 9 + sample) // 10
        self.last_ihu_received = now

    @property
    def link_cost(self) -> int:
        return self.smoothed + self.static_cost

    def __repr__(self) -> str:
        return f"Neighbour({self.id!r}, cost={self.link_cost})"
