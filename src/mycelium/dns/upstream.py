"""Which resolver to forward DNS queries to (docs/extras.md §2.2), decided from the route table.

The reference forwards to the public node with the cheapest selected route (route metric plus the
link cost of its next hop), asks for routes to the ones it knows nothing about, and falls back
to 1.1.1.1 when none is reachable. Pure: the router is passed in, nothing is sent from here
except the route requests the router queues itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..public_nodes import OVERLAY_ADDRESSES
from ..routing.arithmetic import metric_add
from ..routing.table import RouteEntry
from ..subnet import Subnet
from ..wire.tlv import INFINITY

#: The overlay addresses of the reference's ten hosted public nodes, in its order of preference.
PUBLIC_NODES = OVERLAY_ADDRESSES
#: Used when no candidate has a selected route.
FALLBACK = "1.1.1.1"
#: Seconds between two choices (the first is made at start).
EVALUATE_INTERVAL = 30.0


class RouteSource(Protocol):
    """The part of ``routing.router.Router`` the choice reads."""

    def selected_entry(self, subnet: Subnet) -> RouteEntry | None: ...

    def request_route(self, address: bytes, now: float) -> None: ...


def choose(router: RouteSource, candidates: Sequence[bytes], now: float) -> bytes | None:
    """The candidate with the cheapest selected route (the first on ties), or None.

    A candidate with no route at all gets a route request; one with routes but none selected,
    or a lookup already under way, is skipped this round (``request_route`` leaves both be)."""
    best: bytes | None = None
    best_cost = INFINITY
    for address in candidates:
        entry = router.selected_entry(Subnet.of(address, 64))
        if entry is None or entry.metric == INFINITY:
            router.request_route(address, now)
            continue
        cost = metric_add(entry.metric, entry.neighbour.link_cost)
        if best is None or cost < best_cost:
            best, best_cost = address, cost
    return best
