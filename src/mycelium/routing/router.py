"""CONTRACT STUB — the routing track replaces the bodies; the public API below is fixed.

Everything other tracks (dataplane, node runtime, simulator, API) may rely on is declared here.
"""

from __future__ import annotations

import random
from collections.abc import Hashable
from dataclasses import dataclass

from ..identity import RouterId
from ..subnet import Subnet
from ..wire.tlv import Tlv

#: The runtime's handle for one live connection (one neighbour per connection, routing.md §0).
NeighbourId = Hashable


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the packet to this neighbour. ``public_key`` is the destination /64's owner key."""

    neighbour: NeighbourId
    public_key: bytes


@dataclass(frozen=True, slots=True)
class Local:
    """The destination is inside our own /64."""


@dataclass(frozen=True, slots=True)
class Queue:
    """No usable route yet; a route request was sent (or is pending): queue under ``subnet``."""

    subnet: Subnet


@dataclass(frozen=True, slots=True)
class NoRoute:
    """Entries exist but none is selected: answer with ICMP no-route."""


Decision = Forward | Local | Queue | NoRoute


@dataclass(frozen=True, slots=True)
class RouteView:
    """One route entry as the admin API shows it (routing.md §10)."""

    subnet: Subnet
    neighbour: NeighbourId
    metric: int  # received metric; 0xFFFF = infinite
    seqno: int
    selected: bool


class Router:
    def __init__(self, router_id: RouterId, now: float, rng: random.Random | None = None) -> None:
        """A router announcing the /64 derived from ``router_id``'s public key."""
        raise NotImplementedError

    # --- link layer -------------------------------------------------------------------------
    def add_neighbour(self, neighbour: NeighbourId, static_cost: int, now: float) -> None:
        """A connection came up. Queues our /64 Update (and pending route requests) to it."""
        raise NotImplementedError

    def remove_neighbour(self, neighbour: NeighbourId, now: float) -> None:
        """A connection went down (transport error, API removal, or declared dead)."""
        raise NotImplementedError

    def handle_tlv(self, neighbour: NeighbourId, tlv: Tlv, now: float) -> None:
        """Process one control TLV received from ``neighbour``."""
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Run every timer due at or before ``now``."""
        raise NotImplementedError

    def next_deadline(self) -> float:
        """The latest ``now`` at which ``tick`` must be called again."""
        raise NotImplementedError

    # --- outputs, drained by the runtime after every call above -------------------------------
    def take_outgoing(self) -> list[tuple[NeighbourId, Tlv]]:
        """Control TLVs to send, in order, each as its own control packet."""
        raise NotImplementedError

    def take_dead_neighbours(self) -> list[NeighbourId]:
        """Neighbours declared dead (no IHU for 43 s); the runtime closes their connections."""
        raise NotImplementedError

    def take_route_changes(self) -> list[Subnet]:
        """Subnets whose selected route appeared or was lost since the last call.

        The data plane releases (or drops) packets queued under these subnets.
        """
        raise NotImplementedError

    # --- data plane ---------------------------------------------------------------------------
    def route(self, dst: bytes, now: float, origin: bool = False) -> Decision:
        """Forwarding decision for a data packet to ``dst`` (routing.md §7.1, after the hop-limit
        step). Sends route or seqno requests as side effects (visible through
        ``take_outgoing``). ``origin``: we are encrypting this packet ourselves, so entries
        without a selected one mean Queue (after a seqno request), not NoRoute (§7.3)."""
        raise NotImplementedError

    def public_key_for(self, address: bytes) -> bytes | None:
        """Key of the longest-prefix entry covering ``address``, selected or not (§7.3)."""
        raise NotImplementedError

    def request_route(self, address: bytes, now: float) -> None:
        """Start route discovery for the /64 of ``address`` unless one is already under way."""
        raise NotImplementedError

    # --- views for the API and metrics --------------------------------------------------------
    def routes(self) -> list[RouteView]:
        raise NotImplementedError

    def queried_subnets(self, now: float) -> list[tuple[Subnet, float]]:
        """(subnet, seconds left) for every queried subnet."""
        raise NotImplementedError

    def link_cost(self, neighbour: NeighbourId) -> int | None:
        raise NotImplementedError
