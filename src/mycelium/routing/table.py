"""The route table: per subnet either a list of entries (one per neighbour) or a queried marker
(routing.md §4.1, §5.4).

Lookups from TLVs are exact; data-packet lookups are longest-prefix matches over the few prefix
lengths present (in practice only /64), so they cost one or two dict probes.
"""

from __future__ import annotations

from ..identity import RouterId
from ..subnet import Subnet
from .neighbour import Neighbour

_ALL = (1 << 128) - 1


class RouteEntry:
    __slots__ = ("expires", "metric", "neighbour", "router_id", "selected", "seqno", "subnet")

    def __init__(
        self,
        subnet: Subnet,
        router_id: RouterId,
        neighbour: Neighbour,
        metric: int,
        seqno: int,
        expires: float,
    ) -> None:
        self.subnet = subnet
        self.router_id = router_id
        self.neighbour = neighbour
        self.metric = metric  # as received, link cost not added
        self.seqno = seqno
        self.selected = False
        self.expires = expires

    def __lt__(self, other: RouteEntry) -> bool:
        """Expiry-heap ties need no order between entries."""
        return False

    @property
    def source(self) -> tuple[Subnet, RouterId]:
        return (self.subnet, self.router_id)

    def __repr__(self) -> str:
        return (
            f"RouteEntry({self.subnet}, via={self.neighbour.id!r}, metric={self.metric}, "
            f"seqno={self.seqno}, selected={self.selected})"
        )


class RouteList:
    """All entries for one subnet; the selected one, if any, is kept first."""

    __slots__ = ("entries", "forward", "key_owner")

    def __init__(self, key_owner: RouterId) -> None:
        self.entries: list[RouteEntry] = []
        #: The router ID of the first accepted Update: its key is the subnet's end-to-end key.
        #: (Kept whole, not sliced: it is the object the entries share, so it costs nothing.)
        self.key_owner = key_owner
        #: Cached forwarding decision for the selected entry (set by the router).
        self.forward: object | None = None

    @property
    def public_key(self) -> bytes:
        return self.key_owner[:32]

    def selected(self) -> RouteEntry | None:
        entries = self.entries
        if entries and entries[0].selected:
            return entries[0]
        return None

    def entry_for(self, neighbour: Neighbour) -> RouteEntry | None:
        for e in self.entries:
            if e.neighbour is neighbour:
                return e
        return None

    def select(self, entry: RouteEntry) -> None:
        entries = self.entries
        entries[0].selected = False
        i = entries.index(entry)
        entries[0], entries[i] = entries[i], entries[0]
        entry.selected = True
        self.forward = None

    def unselect(self) -> None:
        if self.entries:
            self.entries[0].selected = False
        self.forward = None

    def remove(self, entry: RouteEntry) -> None:
        self.entries.remove(entry)
        if entry.selected:
            self.forward = None


class RouteTable:
    __slots__ = ("_lengths", "lists", "queried")

    def __init__(self) -> None:
        self.lists: dict[Subnet, RouteList] = {}
        #: subnet -> deadline of its queried marker.
        self.queried: dict[Subnet, float] = {}
        # prefix length -> number of slots (lists + markers) of that length, longest first.
        self._lengths: dict[int, int] = {}

    # --- slot bookkeeping ---------------------------------------------------------------------
    def _add_length(self, plen: int) -> None:
        n = self._lengths.get(plen)
        if n is None:
            self._lengths[plen] = 1
            self._lengths = dict(sorted(self._lengths.items(), reverse=True))
        else:
            self._lengths[plen] = n + 1

    def _drop_length(self, plen: int) -> None:
        n = self._lengths[plen] - 1
        if n:
            self._lengths[plen] = n
        else:
            del self._lengths[plen]

    def add_list(self, subnet: Subnet, rl: RouteList) -> None:
        """Create the subnet's list, replacing a queried marker."""
        if self.queried.pop(subnet, None) is None:
            self._add_length(subnet.prefix_len)
        self.lists[subnet] = rl

    def remove_list(self, subnet: Subnet) -> None:
        del self.lists[subnet]
        self._drop_length(subnet.prefix_len)

    def mark_queried(self, subnet: Subnet, deadline: float) -> bool:
        """Create a marker if the slot is empty; True if one was created."""
        if subnet in self.lists or subnet in self.queried:
            return False
        self.queried[subnet] = deadline
        self._add_length(subnet.prefix_len)
        return True

    def unmark_queried(self, subnet: Subnet) -> None:
        if self.queried.pop(subnet, None) is not None:
            self._drop_length(subnet.prefix_len)

    # --- lookups ------------------------------------------------------------------------------
    def longest_match(self, address: int) -> tuple[tuple[int, int], RouteList | float] | None:
        """The most specific slot covering ``address`` as (key, list or marker deadline)."""
        lists = self.lists
        queried = self.queried
        for plen in self._lengths:
            key = (address & ((_ALL << (128 - plen)) & _ALL), plen)
            rl = lists.get(key)  # type: ignore[call-overload]
            if rl is not None:
                return key, rl
            deadline = queried.get(key)  # type: ignore[call-overload]
            if deadline is not None:
                return key, deadline
        return None

    def __len__(self) -> int:
        return len(self.lists)
