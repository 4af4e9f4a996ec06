"""Which resolver to forward DNS queries to (docs/extras.md §2.2), decided from the route table.

The reference forwards to the public node with the cheapest selected route (route metric plus the
link cost of its next hop), asks for routes to the ones it knows nothing about, and falls back
to 1.1.1.1 when none is reachable. Pure: the router is passed in, nothing is sent from here
except the route requests the router queues itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Protocol

from ..routing.arithmetic import metric_add
from ..routing.table import RouteEntry
from ..subnet import Subnet
from ..wire.tlv import INFINITY

#: The overlay addresses of the reference's ten hosted public nodes, in its order of preference.
PUBLIC_NODES = tuple(
    ipaddress.IPv6Address(a).packed
    for a in (
        "54b:83ab:6cb5:7b38:44ae:cd14:53f3:a907",
        "40a:152c:b85b:9646:5b71:d03a:eb27:2462",
        "597:a4ef:806:b09:6650:cbbf:1b68:cc94",
        "549:8bce:fa45:e001:cbf8:f2e2:2da6:a67c",
        "410:2778:53bf:6f41:af28:1b60:d7c0:707a",
        "488:74ac:8a31:277b:9683:c8e:e14f:79a7",
        "4ab:a385:5a4e:ef8f:92e0:1605:7cb6:24b2",
        "4de:b695:3859:8234:d04c:5de6:8097:c27c",
        "5eb:c711:f9ab:eb24:ff26:e392:a115:1c0e",
        "445:465:fe81:1e2b:5420:a029:6b0:9f61",
    )
)
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
