"""What the data plane asks the router, what the router answers for a destination, and the
API's view of a route."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

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


class Versioned(Protocol):
    #: Changes whenever the router's ``route`` or ``public_key_for`` could answer differently.
    version: int


class RouteLookup(Protocol[N]):
    """The part of ``routing.router.Router`` the data plane uses (tests pass a small fake)."""

    def route(self, dst: bytes, now: float, origin: bool = False) -> Decision[N]: ...

    def public_key_for(self, address: bytes) -> bytes | None: ...

    def request_route(self, address: bytes, now: float) -> None: ...

    @property
    def versioned(self) -> Versioned:
        """What holds the version of the router's answers, as a plain attribute: the data path
        reads it for every batch, and on a CPU back from idle a property costs some 8 us more
        than an attribute (the Python call and the code it runs are all cold then)."""
        ...


@dataclass(frozen=True, slots=True)
class RouteView(Generic[N]):
    """One route entry as the admin API shows it (docs/routing.md §10)."""

    subnet: Subnet
    neighbour: N
    metric: int  # received metric; 0xFFFF = infinite
    seqno: int
    selected: bool
