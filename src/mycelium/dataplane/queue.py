"""Packets parked until a route appears, bounded in count, bytes and time.

One class serves both queues of the data plane (reference: ``packet_queue.rs``):

* the *route* queue, keyed by destination /64: packets we originate (still unencrypted) and
  transit packets (encrypted) waiting for a route query; 10 000 per /64, 1 000 000 in total;
* the *incoming* queue, keyed by source /64: packets for us whose sender's key is not known yet;
  100 per /64, 10 000 in total.

Every /64 gets one deadline when its first packet is parked (the reference ties it to the route
query, which lasts 15 s); at the deadline the whole /64 is handed back for ICMP or a silent drop.

The byte bound charges what a parked packet really costs, not only its payload: the Python
objects around each packet and each /64's list, deadline and heap entry (measured with
tracemalloc: ~250 B a packet, ~340 B a /64), so a flood of tiny packets to many /64s stays
within the bound.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from ..subnet import Subnet

ROUTE_QUEUE_PER_SUBNET = 10_000
ROUTE_QUEUE_TOTAL = 1_000_000
#: Our own safety bound (the reference has none beyond the count): 256 MiB of parked packets.
ROUTE_QUEUE_BYTES = 256 * 1024 * 1024
INCOMING_QUEUE_PER_SUBNET = 100
INCOMING_QUEUE_TOTAL = 10_000
#: Our own safety bound for the incoming queue: bodies can be 64 KiB each (64 MiB in total).
INCOMING_QUEUE_BYTES = 64 * 1024 * 1024
#: Route query timeout of the reference (``ROUTE_QUERY_TIMEOUT``).
QUERY_TIMEOUT = 15.0
#: Bytes charged on top of each packet's size, and for each /64 with packets parked.
PACKET_OVERHEAD = 256
SUBNET_OVERHEAD = 384


class PacketQueue:
    """Parked packets per subnet. Items are opaque to the queue; ``size`` is their byte cost."""

    __slots__ = (
        "_deadlines",
        "_heap",
        "_lists",
        "bytes",
        "full_global",
        "full_subnet",
        "max_bytes",
        "max_per_subnet",
        "max_total",
        "timeout",
        "total",
    )

    def __init__(
        self,
        max_per_subnet: int,
        max_total: int,
        max_bytes: int | None = None,
        timeout: float = QUERY_TIMEOUT,
    ) -> None:
        self.max_per_subnet = max_per_subnet
        self.max_total = max_total
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.total = 0
        self.bytes = 0
        #: Refusals, by the reference's metric labels (the byte bound counts as global).
        self.full_global = 0
        self.full_subnet = 0
        self._lists: dict[Subnet, list[tuple[int, Any]]] = {}
        self._deadlines: dict[Subnet, float] = {}
        self._heap: list[tuple[float, Subnet]] = []

    def add(self, subnet: Subnet, item: Any, size: int, now: float) -> bool:
        """Park ``item`` (``size``: its payload bytes); False when a limit is reached (the
        caller answers or drops it)."""
        items = self._lists.get(subnet)
        size += PACKET_OVERHEAD if items is not None else PACKET_OVERHEAD + SUBNET_OVERHEAD
        if self.total >= self.max_total or (
            self.max_bytes is not None and self.bytes + size > self.max_bytes
        ):
            self.full_global += 1
            return False
        if items is None:
            items = self._lists[subnet] = []
            deadline = now + self.timeout
            self._deadlines[subnet] = deadline
            heapq.heappush(self._heap, (deadline, subnet))
        elif len(items) >= self.max_per_subnet:
            self.full_subnet += 1
            return False
        items.append((size, item))
        self.total += 1
        self.bytes += size
        return True

    def take(self, subnet: Subnet) -> list[Any]:
        """Remove and return everything parked under ``subnet``, in arrival order."""
        items = self._lists.pop(subnet, None)
        if items is None:
            return []
        del self._deadlines[subnet]
        self.total -= len(items)
        self.bytes -= sum(size for size, _ in items)
        return [item for _, item in items]

    def subnets_within(self, subnet: Subnet) -> list[Subnet]:
        """Parked subnets equal to or inside ``subnet``."""
        if subnet in self._lists:
            return [subnet]
        if subnet.prefix_len >= 64:
            return []
        return [s for s in self._lists if subnet.contains_subnet(s)]

    def expire(self, now: float) -> list[tuple[Subnet, list[Any]]]:
        """Take every subnet whose deadline is at or before ``now``."""
        expired: list[tuple[Subnet, list[Any]]] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, subnet = heapq.heappop(heap)
            if self._deadlines.get(subnet) == deadline:
                expired.append((subnet, self.take(subnet)))
        return expired

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and self._deadlines.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # stale: the subnet was taken or re-created since
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return self.total

    def __contains__(self, subnet: object) -> bool:
        return subnet in self._lists

    def __iter__(self) -> Iterator[Subnet]:
        return iter(list(self._lists))


def new_route_queue() -> PacketQueue:
    """The route queue with the reference's bounds (and our byte bound)."""
    return PacketQueue(ROUTE_QUEUE_PER_SUBNET, ROUTE_QUEUE_TOTAL, ROUTE_QUEUE_BYTES)


def new_incoming_queue() -> PacketQueue:
    """The incoming queue with the reference's bounds (and our byte bound)."""
    return PacketQueue(INCOMING_QUEUE_PER_SUBNET, INCOMING_QUEUE_TOTAL, INCOMING_QUEUE_BYTES)
