"""The route table, stored column-wise (docs/routing.md §4.1, §4.3, §5.4).

A node in a 100 000-node network holds 100 000 routes. As Python objects (an entry object per
neighbour, a list and a tuple key per subnet, boxed floats) a route cost ~850 bytes; here a subnet
is one dict item plus a few array cells and an entry is six array cells, ~250 bytes a route
(``bench/routing_scale.py`` measures it).

A *slot* is what this node knows about one subnet: its entries (one per neighbour that announced
it, chained, the selected one first), the *owner* (the router ID of the first accepted Update,
whose key is the subnet's end-to-end key) and the feasibility distance kept for the owner's router
ID. Distances for other router IDs (rare: a restarted origin) live in a side dict of the source
table. A slot outlives its last entry while it holds a distance, so ``len`` and the views count
only slots with entries. Entries and slots are small ints; freed ones are reused.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..identity import ROUTER_ID_SIZE, RouterId
from ..subnet import Subnet
from .decisions import Forward
from .neighbour import Neighbour

_ALL = (1 << 128) - 1
NONE = -1


def subnet_key(subnet: Subnet) -> int:
    """One int per subnet (network and length): cheaper to hold and hash than the tuple."""
    return subnet[0] << 8 | subnet[1]


def key_subnet(key: int) -> Subnet:
    return Subnet(key >> 8, key & 0xFF)


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """A snapshot of one entry, for callers outside the router (checks, DNS, tests)."""

    subnet: Subnet
    router_id: RouterId
    neighbour: Neighbour[Any]
    metric: int  # as received, link cost not added
    seqno: int
    expires: float
    selected: bool


class RouteTable:
    __slots__ = (
        "_free_entries",
        "_free_slots",
        "_keys",
        "_lengths",
        "_owner",
        "e_expires",
        "e_metric",
        "e_nb",
        "e_next",
        "e_rid",
        "e_seqno",
        "e_slot",
        "fd_metric",
        "fd_seqno",
        "fd_until",
        "forward",
        "head",
        "index",
        "live",
        "nb_refs",
        "queried",
        "sel",
        "version",
    )

    def __init__(self) -> None:
        # --- slots ---
        self.index: dict[int, int] = {}  # subnet key -> slot
        self._keys: list[int] = []  # slot -> subnet key (-1: free)
        self._owner = bytearray()  # slot -> owner router ID, 40 bytes each
        self.head = array("i")  # slot -> first entry or NONE
        self.sel = bytearray()  # slot -> 1 if the first entry is selected
        self.fd_metric = array("H")  # slot -> feasibility distance of the owner's ID ...
        self.fd_seqno = array("H")
        self.fd_until = array("d")  # ... and when it is forgotten (0: none held)
        self._free_slots: list[int] = []
        #: Slots with entries.
        self.live = 0
        #: slot -> cached forwarding decision for its selected entry (set by the router).
        self.forward: dict[int, Forward[Any]] = {}
        #: Changes whenever a lookup could answer differently (a prefix gained its first entry
        #: or lost its last, a marker came or went, a selection or its next hop changed): the
        #: data plane keeps its per-address decisions while it stays the same.
        self.version = 0
        # --- entries ---
        self.e_slot = array("I")
        self.e_next = array("i")
        self.e_nb = array("I")  # the router's neighbour index
        self.e_metric = array("H")  # as received, link cost not added
        self.e_seqno = array("H")
        self.e_expires = array("d")  # -1.0 once freed
        #: entry -> its router ID where it is not the slot owner's.
        self.e_rid: dict[int, RouterId] = {}
        self._free_entries: list[int] = []
        #: neighbour index -> entries naming it (an index is reused only at zero).
        self.nb_refs = array("I")
        # --- queried markers and the prefix lengths present ---
        #: subnet -> deadline of its queried marker.
        self.queried: dict[Subnet, float] = {}
        # prefix length -> slots with entries plus markers of that length, longest first.
        self._lengths: dict[int, int] = {}

    # --- slots --------------------------------------------------------------------------------
    def slot(self, subnet: Subnet) -> int:
        """The subnet's slot (possibly without entries) or NONE."""
        return self.index.get(subnet_key(subnet), NONE)

    def find(self, subnet: Subnet) -> int:
        """The subnet's slot if it has entries, else NONE."""
        s = self.index.get(subnet_key(subnet), NONE)
        return s if s == NONE or self.head[s] != NONE else NONE

    def open(
        self,
        subnet: Subnet,
        owner: RouterId,
        moved: dict[tuple[Subnet, RouterId], tuple[int, int, float]],
    ) -> int:
        """The subnet's slot for a first entry. An entry-less slot takes ``owner`` as its owner;
        distances move between the columns and ``moved`` (the source table's side dict) so each
        stays filed under its own router ID."""
        key = subnet_key(subnet)
        s = self.index.get(key, NONE)
        if s == NONE:
            s = self._new_slot(key)
        elif self.head[s] != NONE or self.owned_by(s, owner):
            return s
        elif self.fd_until[s]:
            moved[(subnet, self.owner(s))] = (self.fd_metric[s], self.fd_seqno[s], self.fd_until[s])
        o = s * ROUTER_ID_SIZE
        self._owner[o : o + ROUTER_ID_SIZE] = owner
        fd = moved.pop((subnet, owner), None)
        if fd is None:
            self.fd_until[s] = 0.0
        else:
            self.fd_metric[s], self.fd_seqno[s], self.fd_until[s] = fd
        return s

    def _new_slot(self, key: int) -> int:
        if self._free_slots:
            s = self._free_slots.pop()
            self._keys[s] = key
        else:
            s = len(self._keys)
            self._keys.append(key)
            self._owner.extend(bytes(ROUTER_ID_SIZE))
            self.head.append(NONE)
            self.sel.append(0)
            self.fd_metric.append(0)
            self.fd_seqno.append(0)
            self.fd_until.append(0.0)
        self.index[key] = s
        return s

    def release(self, s: int) -> None:
        """Free the slot if it holds neither entries nor a distance."""
        if self.head[s] == NONE and not self.fd_until[s]:
            del self.index[self._keys[s]]
            self._keys[s] = NONE
            self._free_slots.append(s)

    def key(self, s: int) -> int:
        return self._keys[s]

    def subnet(self, s: int) -> Subnet:
        return key_subnet(self._keys[s])

    def owner(self, s: int) -> RouterId:
        o = s * ROUTER_ID_SIZE
        # Stored IDs were RouterIds already: skip the constructor's length check.
        return bytes.__new__(RouterId, self._owner[o : o + ROUTER_ID_SIZE])

    def owned_by(self, s: int, router_id: bytes) -> bool:
        o = s * ROUTER_ID_SIZE
        return self._owner[o : o + ROUTER_ID_SIZE] == router_id

    def public_key(self, s: int) -> bytes:
        o = s * ROUTER_ID_SIZE
        return bytes(self._owner[o : o + 32])

    def slots(self) -> Iterator[int]:
        """Every slot with entries."""
        head = self.head
        for s, key in enumerate(self._keys):
            if key != NONE and head[s] != NONE:
                yield s

    def all_slots(self) -> Iterator[int]:
        """Every slot in use, entry-less ones (holding only a distance) too."""
        for s, key in enumerate(self._keys):
            if key != NONE:
                yield s

    def __len__(self) -> int:
        return self.live

    def entry_count(self) -> int:
        return len(self.e_slot) - len(self._free_entries)

    # --- entries ------------------------------------------------------------------------------
    def add_entry(
        self,
        s: int,
        nb: int,
        metric: int,
        seqno: int,
        expires: float,
        router_id: RouterId,
        owned: bool | None = None,
    ) -> int:
        """Append an entry to the slot's chain (last, like a new list item). ``owned``: whether
        ``router_id`` is the slot owner's, if the caller knows."""
        if self._free_entries:
            e = self._free_entries.pop()
            self.e_slot[e] = s
            self.e_next[e] = NONE
            self.e_nb[e] = nb
            self.e_metric[e] = metric
            self.e_seqno[e] = seqno
            self.e_expires[e] = expires
        else:
            e = len(self.e_slot)
            self.e_slot.append(s)
            self.e_next.append(NONE)
            self.e_nb.append(nb)
            self.e_metric.append(metric)
            self.e_seqno.append(seqno)
            self.e_expires.append(expires)
        if not (self.owned_by(s, router_id) if owned is None else owned):
            self.e_rid[e] = router_id
        self.nb_refs[nb] += 1
        x = self.head[s]
        if x == NONE:
            self.head[s] = e
            self.live += 1
            self._add_length(self._keys[s] & 0xFF)
        else:
            nxt = self.e_next
            while nxt[x] != NONE:
                x = nxt[x]
            nxt[x] = e
        return e

    def remove_entry(self, e: int) -> None:
        """Unlink and free an entry (the others keep their order); frees an empty slot that
        holds no distance."""
        s = self.e_slot[e]
        nxt = self.e_next
        x = self.head[s]
        if x == e:
            self.head[s] = nxt[e]
            if self.sel[s]:
                self.sel[s] = 0
                self._forget_forward(s)
        else:
            while nxt[x] != e:
                x = nxt[x]
            nxt[x] = nxt[e]
        self.e_expires[e] = -1.0
        self.e_rid.pop(e, None)
        self.nb_refs[self.e_nb[e]] -= 1
        self._free_entries.append(e)
        if self.head[s] == NONE:
            self.live -= 1
            self._drop_length(self._keys[s] & 0xFF)
            self.release(s)

    def entries(self, s: int) -> Iterator[int]:
        nxt = self.e_next
        e = self.head[s]
        while e != NONE:
            yield e
            e = nxt[e]

    def entry_for(self, s: int, nb: int) -> int:
        nxt = self.e_next
        e_nb = self.e_nb
        e = self.head[s]
        while e != NONE and e_nb[e] != nb:
            e = nxt[e]
        return e

    def router_id(self, e: int) -> RouterId:
        rid = self.e_rid.get(e)
        return self.owner(self.e_slot[e]) if rid is None else rid

    def set_router_id(self, e: int, router_id: RouterId) -> None:
        if self.owned_by(self.e_slot[e], router_id):
            self.e_rid.pop(e, None)
        else:
            self.e_rid[e] = router_id

    def selected(self, s: int) -> int:
        return self.head[s] if self.sel[s] else NONE

    def selected_of(self, subnet: Subnet) -> int:
        """The subnet's selected entry, or NONE."""
        s = self.index.get(subnet_key(subnet), NONE)
        return NONE if s == NONE or not self.sel[s] else self.head[s]

    def select(self, s: int, e: int) -> None:
        """Mark ``e`` selected and swap it with the first entry (the reference's list order)."""
        h = self.head[s]
        if h == e and self.sel[s]:
            return  # unchanged: the cached forwarding decision still holds
        self.sel[s] = 1
        self._forget_forward(s)
        if h == e:
            return
        nxt = self.e_next
        p = h
        while nxt[p] != e:
            p = nxt[p]
        after_e = nxt[e]
        if p == h:  # e is second: [h, e, ...] -> [e, h, ...]
            nxt[e] = h
        else:  # [h, a, .., p, e, b ..] -> [e, a, .., p, h, b ..]
            nxt[e] = nxt[h]
            nxt[p] = h
        nxt[h] = after_e
        self.head[s] = e

    def unselect(self, s: int) -> None:
        self.sel[s] = 0
        self._forget_forward(s)

    def _forget_forward(self, s: int) -> None:
        self.forward.pop(s, None)
        self.version += 1

    def snapshot(self, e: int, neighbour: Neighbour[Any]) -> RouteEntry:
        s = self.e_slot[e]
        return RouteEntry(
            self.subnet(s),
            self.router_id(e),
            neighbour,
            self.e_metric[e],
            self.e_seqno[e],
            self.e_expires[e],
            bool(self.sel[s]) and self.head[s] == e,
        )

    # --- neighbour indices --------------------------------------------------------------------
    def new_neighbour_index(self, retired: list[int]) -> int:
        """A retired index no entry names any more, else a new one."""
        refs = self.nb_refs
        for i, nb in enumerate(retired):
            if not refs[nb]:
                return retired.pop(i)
        self.nb_refs.append(0)
        return len(self.nb_refs) - 1

    # --- queried markers ----------------------------------------------------------------------
    def _add_length(self, plen: int) -> None:
        self.version += 1
        n = self._lengths.get(plen)
        if n is None:
            self._lengths[plen] = 1
            self._lengths = dict(sorted(self._lengths.items(), reverse=True))
        else:
            self._lengths[plen] = n + 1

    def _drop_length(self, plen: int) -> None:
        self.version += 1
        n = self._lengths[plen] - 1
        if n:
            self._lengths[plen] = n
        else:
            del self._lengths[plen]

    def mark_queried(self, subnet: Subnet, deadline: float) -> bool:
        """Create a marker if the subnet has neither entries nor a marker; True if created."""
        if self.find(subnet) != NONE or subnet in self.queried:
            return False
        self.queried[subnet] = deadline
        self._add_length(subnet.prefix_len)
        return True

    def unmark_queried(self, subnet: Subnet) -> None:
        if self.queried.pop(subnet, None) is not None:
            self._drop_length(subnet.prefix_len)

    # --- lookups ------------------------------------------------------------------------------
    def longest_match(self, address: int) -> tuple[int, int, float] | None:
        """The most specific slot with entries, or queried marker, covering ``address``:
        (subnet key, slot, 0.0) or (subnet key, NONE, marker deadline). Keys, not subnets: the
        data plane's common case (a selected route) needs no Subnet built."""
        index = self.index
        head = self.head
        queried = self.queried
        for plen in self._lengths:
            key = (address & ((_ALL << (128 - plen)) & _ALL)) << 8 | plen
            s = index.get(key, NONE)
            if s != NONE and head[s] != NONE:
                return key, s, 0.0
            if queried:
                deadline = queried.get(key_subnet(key))
                if deadline is not None:
                    return key, NONE, deadline
        return None
