"""What the router answers the data plane for a destination, and the API's view of a route."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..subnet import Subnet

#: The runtime's handle for one live connection (one neighbour per connection,
#: docs/routing.md §1.1).
N = TypeVar("N", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Forward(Generic[N]):
    """Send the packet to this neighbour. ``public_key`` is the destination /64's owner key."""

    neighbour: N
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


Decision = Forward[N] | Local | Queue | NoRoute

LOCAL = Local()
NO_ROUTE = NoRoute()


@dataclass(frozen=True, slots=True)
class RouteView(Generic[N]):
    """One route entry as the admin API shows it (docs/routing.md §10)."""

    subnet: Subnet
    neighbour: N
    metric: int  # received metric; 0xFFFF = infinite
    seqno: int
    selected: bool
