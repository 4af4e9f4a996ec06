"""The Babel-derived router of the reference (routing.md §3 to §7), as a sans-I/O state machine.

Inputs are method calls carrying ``now``; outputs are drained with ``take_*``. Every timer lives
in one heap (route expiry, queried markers) or in a handful of periodic deadlines, so one process
can run thousands of routers on a virtual clock.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from ..identity import RouterId, node_subnet, overlay_address
from ..subnet import GLOBAL_SUBNET, Subnet
from ..wire.tlv import (
    INFINITY,
    Hello,
    Ihu,
    RouteRequest,
    SeqnoRequest,
    Tlv,
    Update,
)
from .arithmetic import hold_time, metric_add, metric_sub, seqno_gt, seqno_lt, seqno_next
from .caches import RouteRequestCache, RouteRequestInfo, SeqnoCache
from .constants import (
    BIG_METRIC_CHANGE,
    DEAD_NEIGHBOUR_CHECK_INTERVAL,
    DEAD_NEIGHBOUR_THRESHOLD,
    HELLO_INTERVAL,
    HELLO_INTERVAL_CS,
    IHU_INTERVAL_CS,
    INTERVAL_NOT_REPEATING_CS,
    MAX_RR_GENERATION,
    NODE_PREFIX_LEN,
    RETRACTED_ROUTE_HOLD_TIME,
    ROUTE_ALMOST_EXPIRED,
    ROUTE_QUERY_TIMEOUT,
    SEQNO_BUMP_TIMEOUT,
    SEQNO_DEDUP_TTL,
    SEQNO_REQUEST_HOP_COUNT,
    SIGNIFICANT_METRIC_IMPROVEMENT,
    SOURCE_HOLD_DURATION,
    UPDATE_INTERVAL,
    UPDATE_INTERVAL_CS,
)
from .neighbour import Neighbour
from .source_table import SourceKey, SourceTable
from .table import NONE, RouteEntry, RouteTable, key_subnet

#: The runtime's handle for one live connection (one neighbour per connection, routing.md §0).
NeighbourId = Hashable

_MASK64 = ((1 << 64) - 1) << 64
#: 400::/7 as a shift and the value of the top 7 bits.
_GLOBAL_SHIFT = 128 - GLOBAL_SUBNET.prefix_len
_GLOBAL_TOP = GLOBAL_SUBNET.network >> _GLOBAL_SHIFT


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

_LOCAL = Local()
_NO_ROUTE = NoRoute()


@dataclass(frozen=True, slots=True)
class RouteView:
    """One route entry as the admin API shows it (routing.md §10)."""

    subnet: Subnet
    neighbour: NeighbourId
    metric: int  # received metric; 0xFFFF = infinite
    seqno: int
    selected: bool


@lru_cache(maxsize=4096)
def _owner_address(router_id: bytes) -> int:
    """The overlay address a router ID's key owns (cached: every flooded Update is checked)."""
    return int.from_bytes(overlay_address(router_id[:32]), "big")


#: The reference's ``action`` labels for received seqno requests.
SEQNO_ACTIONS = (
    "reply_local",
    "bump_seqno",
    "ttl_expired",
    "forward_feasible",
    "forward_unfeasible",
    "unhandled",
)


class RouterCounters:
    """What the metrics endpoint reports (names follow the reference's where they map)."""

    __slots__ = (
        "neighbours_added",
        "neighbours_died",
        "neighbours_removed",
        "requests_ignored",
        "route_selections",
        "routes_expired_removed",
        "routes_expired_retracted",
        "selected_routes_expired",
        "seqno_requests",
        "tlvs_by_type",
        "tlvs_from_unknown_neighbour",
        "triggered_updates",
        "updates_filtered",
        "updates_not_interested",
        "updates_skipped_selection",
        "updates_to_dead_neighbour",
        "wildcard_route_requests",
    )

    def __init__(self) -> None:
        self.tlvs_from_unknown_neighbour = 0
        self.updates_filtered = 0
        #: Updates for an unknown subnet that were retractions or unfeasible.
        self.updates_not_interested = 0
        #: Updates processed without running route selection (they could not be selected).
        self.updates_skipped_selection = 0
        #: Updates not queued because their neighbour had been declared dead.
        self.updates_to_dead_neighbour = 0
        self.requests_ignored = 0
        self.wildcard_route_requests = 0
        #: Selected routes (or retractions) propagated after a change or to interested peers.
        self.triggered_updates = 0
        self.neighbours_added = 0
        self.neighbours_removed = 0
        self.neighbours_died = 0
        #: Selections run because a neighbour went away: the reference's help text also names
        #: expiry, but it reselects inline there without counting.
        self.route_selections = 0
        #: Expired entries: unselected ones are removed, selected ones retracted.
        self.routes_expired_removed = 0
        self.routes_expired_retracted = 0
        self.selected_routes_expired = 0
        #: What happened to received seqno requests, by the reference's ``action`` label.
        self.seqno_requests: dict[str, int] = dict.fromkeys(SEQNO_ACTIONS, 0)
        #: TLV class -> received from a live neighbour.
        self.tlvs_by_type: dict[type, int] = dict.fromkeys(
            (Update, Hello, Ihu, RouteRequest, SeqnoRequest), 0
        )


class Router:
    def __init__(self, router_id: RouterId, now: float, rng: random.Random | None = None) -> None:
        """A router announcing the /64 derived from ``router_id``'s public key.

        ``rng`` is accepted so embedders and the simulator can pass one; the reference's rules
        draw no randomness (the router ID's random suffix is chosen by the caller).
        """
        self.router_id = router_id
        self.subnet = node_subnet(router_id.public_key)
        self.seqno = 0
        self.counters = RouterCounters()
        self.table = RouteTable()
        self.sources = SourceTable(self.table)
        self._own_net = self.subnet.network
        self._neighbours: dict[NeighbourId, Neighbour] = {}
        # Entries name neighbours by index; a gone neighbour's index is reused once no entry
        # names it any more (its retracted entries live a few seconds longer than it).
        self._nbs: list[Neighbour] = []
        self._retired: list[int] = []
        self._seqno_cache = SeqnoCache()
        self._rr_cache = RouteRequestCache()
        self._last_bump = now
        # Route expiry in a timer wheel of whole seconds (4 bytes per filed entry), queried
        # markers in a heap of (deadline, subnet). Both delete lazily: a refresh files the entry
        # again and the superseded filing is skipped when its second comes. Expiry therefore
        # runs up to one second late, invisible next to 1050 s.
        self._wheel: dict[int, array[int]] = {}
        self._wheel_seconds: list[int] = []
        self._wheel_items = 0
        self._wheel_limit = 4096
        self._markers: list[tuple[float, Subnet]] = []
        self._next_hello = now + HELLO_INTERVAL
        self._next_dead_check = now + DEAD_NEIGHBOUR_CHECK_INTERVAL
        self._next_announce = now + UPDATE_INTERVAL
        self._next_sweep = now + SEQNO_DEDUP_TTL
        self._next_source_sweep = now + SOURCE_HOLD_DURATION
        self._outgoing: list[tuple[NeighbourId, Tlv]] = []
        self._dead: list[NeighbourId] = []
        self._changes: dict[Subnet, None] = {}

    # --- link layer -------------------------------------------------------------------------
    def add_neighbour(self, neighbour: NeighbourId, static_cost: int, now: float) -> None:
        """A connection came up. Queues our /64 Update (and pending route requests) to it."""
        if neighbour in self._neighbours:
            return
        index = self.table.new_neighbour_index(self._retired)
        n = self._neighbours[neighbour] = Neighbour(neighbour, static_cost, now, index)
        if index == len(self._nbs):
            self._nbs.append(n)
        else:
            self._nbs[index] = n
        self.counters.neighbours_added += 1
        self._send_own_update((n,), now)
        for subnet, deadline in self.table.queried.items():
            if deadline > now:
                self._outgoing.append((neighbour, RouteRequest(subnet, 0)))

    def remove_neighbour(self, neighbour: NeighbourId, now: float) -> None:
        """A connection went down (transport error, API removal, or declared dead)."""
        n = self._neighbours.pop(neighbour, None)
        if n is not None:
            # The reference counts every removal as a death too (both go through its dead-peer
            # handler), whichever side noticed it.
            self.counters.neighbours_removed += 1
            self.counters.neighbours_died += 1
            self._neighbour_died(n, now)

    def handle_tlv(self, neighbour: NeighbourId, tlv: Tlv, now: float) -> None:
        """Process one control TLV received from ``neighbour``."""
        n = self._neighbours.get(neighbour)
        if n is None:
            self.counters.tlvs_from_unknown_neighbour += 1
            return
        kind = type(tlv)
        self.counters.tlvs_by_type[kind] += 1
        if kind is Update:
            self._on_update(n, tlv, now)  # type: ignore[arg-type]
        elif kind is Hello:
            self._outgoing.append((neighbour, Ihu(min(n.link_cost, 0xFFFF), IHU_INTERVAL_CS)))
        elif kind is Ihu:
            n.on_ihu(now)
        elif kind is RouteRequest:
            self._on_route_request(n, tlv, now)  # type: ignore[arg-type]
        elif kind is SeqnoRequest:
            self._on_seqno_request(n, tlv, now)  # type: ignore[arg-type]

    def tick(self, now: float) -> None:
        """Run every timer due at or before ``now``."""
        if self._next_hello <= now:
            self._next_hello = _advance(self._next_hello, HELLO_INTERVAL, now)
            self._send_hellos(now)
        if self._next_dead_check <= now:
            self._next_dead_check = _advance(
                self._next_dead_check, DEAD_NEIGHBOUR_CHECK_INTERVAL, now
            )
            self._check_dead(now)
        if self._next_announce <= now:
            self._next_announce = _advance(self._next_announce, UPDATE_INTERVAL, now)
            self._send_own_update(self._neighbours.values(), now)
        if self._next_sweep <= now:
            self._next_sweep = _advance(self._next_sweep, SEQNO_DEDUP_TTL, now)
            self._seqno_cache.sweep(now)
            self._rr_cache.sweep(now)
        if self._next_source_sweep <= now:
            self._next_source_sweep = _advance(self._next_source_sweep, SOURCE_HOLD_DURATION, now)
            self.sources.sweep(now)
        markers = self._markers
        while markers and markers[0][0] <= now:
            deadline, subnet = heapq.heappop(markers)
            if self.table.queried.get(subnet) == deadline:
                self.table.unmark_queried(subnet)
        seconds = self._wheel_seconds
        expires = self.table.e_expires
        while seconds and seconds[0] <= now:
            second = heapq.heappop(seconds)
            filed = self._wheel.pop(second)
            self._wheel_items -= len(filed)
            for e in filed:
                # Superseded filings and freed entries (expiry -1) do not match their second.
                if math.ceil(expires[e]) == second:
                    self._entry_expired(e, now)

    def next_deadline(self) -> float:
        """The latest ``now`` at which ``tick`` must be called again."""
        deadline = min(
            self._next_hello,
            self._next_dead_check,
            self._next_announce,
            self._next_sweep,
            self._next_source_sweep,
        )
        if self._wheel_seconds and self._wheel_seconds[0] < deadline:
            deadline = self._wheel_seconds[0]
        if self._markers and self._markers[0][0] < deadline:
            deadline = self._markers[0][0]
        return deadline

    # --- outputs, drained by the runtime after every call above -------------------------------
    def take_outgoing(self) -> list[tuple[NeighbourId, Tlv]]:
        """Control TLVs to send, in order, each as its own control packet."""
        out, self._outgoing = self._outgoing, []
        return out

    def take_dead_neighbours(self) -> list[NeighbourId]:
        """Neighbours declared dead (no IHU for 43 s); the runtime closes their connections."""
        dead, self._dead = self._dead, []
        return dead

    def take_route_changes(self) -> list[Subnet]:
        """Subnets whose selected route appeared or was lost since the last call.

        The data plane releases (or drops) packets queued under these subnets.
        """
        changes = list(self._changes)
        self._changes.clear()
        return changes

    # --- data plane ---------------------------------------------------------------------------
    def route(self, dst: bytes, now: float, origin: bool = False) -> Decision:
        """Forwarding decision for a data packet to ``dst`` (routing.md §7.1, after the hop-limit
        step). Sends route or seqno requests as side effects (visible through
        ``take_outgoing``). ``origin``: we are encrypting this packet ourselves, so entries
        without a selected one mean Queue (after a seqno request), not NoRoute (§7.3)."""
        address = int.from_bytes(dst, "big")
        if address & _MASK64 == self._own_net:
            return _LOCAL
        t = self.table
        found = t.longest_match(address)
        if found is not None:
            key, s, deadline = found
            if s != NONE:
                if t.sel[s]:
                    sre = t.head[s]
                    if t.e_expires[sre] - now < ROUTE_ALMOST_EXPIRED:
                        self._send_route_request(Subnet(address & _MASK64, 64), now)
                    forward = t.forward.get(s)
                    if forward is None:
                        forward = t.forward[s] = Forward(self._nbs[t.e_nb[sre]].id, t.public_key(s))
                    return forward  # type: ignore[return-value]
                if not origin:
                    return _NO_ROUTE
                subnet64 = Subnet(address & _MASK64, 64)
                # Deviation: when no live neighbour can take the seqno request (its only
                # advertisers are gone), ask everyone with a route request instead of waiting
                # for the dead entries to expire.
                source = (key_subnet(key), t.router_id(t.head[s]))
                if not self._send_seqno_request(source, None, now):
                    self._send_route_request(subnet64, now)
                return Queue(subnet64)
            if deadline > now:
                return Queue(Subnet(address & _MASK64, 64))
            t.unmark_queried(key_subnet(key))
        subnet64 = Subnet(address & _MASK64, 64)
        self._send_route_request(subnet64, now)
        return Queue(subnet64)

    def public_key_for(self, address: bytes) -> bytes | None:
        """Key of the longest-prefix entry covering ``address``, selected or not (§7.3)."""
        found = self.table.longest_match(int.from_bytes(address, "big"))
        if found is not None and found[1] != NONE:
            return self.table.public_key(found[1])
        return None

    def request_route(self, address: bytes, now: float) -> None:
        """Start route discovery for the /64 of ``address`` unless one is already under way."""
        value = int.from_bytes(address, "big")
        if value & _MASK64 == self._own_net:
            return
        found = self.table.longest_match(value)
        if found is not None:
            key, s, deadline = found
            if s != NONE or deadline > now:
                return
            self.table.unmark_queried(key_subnet(key))
        self._send_route_request(Subnet(value & _MASK64, 64), now)

    # --- views for the API, metrics and the simulator's checks --------------------------------
    def routes(self) -> list[RouteView]:
        t = self.table
        nbs = self._nbs
        return [
            RouteView(
                t.subnet(s),
                nbs[t.e_nb[e]].id,
                t.e_metric[e],
                t.e_seqno[e],
                bool(t.sel[s]) and e == t.head[s],
            )
            for s in t.slots()
            for e in t.entries(s)
        ]

    def queried_subnets(self, now: float) -> list[tuple[Subnet, float]]:
        """(subnet, seconds left) for every queried subnet."""
        return [(s, max(0.0, d - now)) for s, d in self.table.queried.items()]

    def link_cost(self, neighbour: NeighbourId) -> int | None:
        n = self._neighbours.get(neighbour)
        return None if n is None else n.link_cost

    def neighbours(self) -> list[NeighbourId]:
        return list(self._neighbours)

    def selected_origins(self) -> list[RouterId]:
        """The router ID behind every selected route (whose keys the proxy prober knocks on)."""
        t = self.table
        return [t.router_id(t.head[s]) for s in t.slots() if t.sel[s]]

    def selected_entry(self, subnet: Subnet) -> RouteEntry | None:
        t = self.table
        e = t.selected_of(subnet)
        return None if e == NONE else t.snapshot(e, self._nbs[t.e_nb[e]])

    def selected_hop(self, subnet: Subnet) -> tuple[NeighbourId, int] | None:
        """(next hop, received metric) of the subnet's selected entry: ``selected_entry``
        without the snapshot, for checks walking every pair of a large simulation."""
        t = self.table
        e = t.selected_of(subnet)
        return None if e == NONE else (self._nbs[t.e_nb[e]].id, t.e_metric[e])

    # --- timers -------------------------------------------------------------------------------
    def _schedule(self, e: int) -> None:
        second = math.ceil(self.table.e_expires[e])
        if _file(self._wheel, second, e):
            heapq.heappush(self._wheel_seconds, second)
        self._wheel_items += 1
        if self._wheel_items > self._wheel_limit:
            self._compact_wheel()

    def _compact_wheel(self) -> None:
        """Drop superseded filings (every refresh files the entry again)."""
        wheel: dict[int, array[int]] = {}
        for e, expires in enumerate(self.table.e_expires):
            if expires >= 0:
                _file(wheel, math.ceil(expires), e)
        self._wheel = wheel
        self._wheel_seconds = sorted(wheel)
        self._wheel_items = live = sum(len(v) for v in wheel.values())
        self._wheel_limit = max(4096, 2 * live)

    def _mark_queried(self, subnet: Subnet, now: float) -> None:
        deadline = now + ROUTE_QUERY_TIMEOUT
        if self.table.mark_queried(subnet, deadline):
            heapq.heappush(self._markers, (deadline, subnet))

    def _send_hellos(self, now: float) -> None:
        out = self._outgoing
        for n in self._neighbours.values():
            n.last_hello_sent = now
            out.append((n.id, Hello(n.hello_seqno, HELLO_INTERVAL_CS)))
            n.hello_seqno = (n.hello_seqno + 1) & 0xFFFF

    def _check_dead(self, now: float) -> None:
        dead = [
            n
            for n in self._neighbours.values()
            if now - n.last_ihu_received > DEAD_NEIGHBOUR_THRESHOLD
        ]
        for n in dead:
            del self._neighbours[n.id]
            self.counters.neighbours_died += 1
            self.counters.neighbours_removed += 1
            self._dead.append(n.id)
            self._neighbour_died(n, now)

    # --- updates ------------------------------------------------------------------------------
    def _on_update(self, n: Neighbour, u: Update, now: float) -> None:
        subnet = u.subnet
        metric = u.metric
        network, plen = subnet
        # Inline: at least a /64, inside 400::/7, and (unless a retraction) holding the address
        # of the key in the router ID. Every flooded Update passes here.
        if (
            plen < NODE_PREFIX_LEN
            or network >> _GLOBAL_SHIFT != _GLOBAL_TOP
            or (metric != INFINITY and (_owner_address(u.router_id) ^ network) >> (128 - plen))
        ):
            self.counters.updates_filtered += 1
            return
        if subnet == self.subnet:
            return
        router_id = u.router_id
        seqno = u.seqno
        key: SourceKey = (subnet, router_id)
        seqno_cache = self._seqno_cache
        interested = seqno_cache.get((router_id, subnet, seqno)) if seqno_cache else None
        t = self.table
        counters = self.counters
        s = t.index.get(network << 8 | plen, NONE)
        owned = s != NONE and t.owned_by(s, router_id)
        if owned:
            feasible = self.sources.feasible_owned(s, seqno, metric, now)
        else:
            feasible = self.sources.feasible(key, seqno, metric, now, s)
        if s == NONE or t.head[s] == NONE:
            if not feasible or metric == INFINITY:
                if not feasible:
                    self._send_seqno_request(key, n, now)
                counters.updates_not_interested += 1
                return
            s = t.open(subnet, router_id, self.sources.other)
            owned = True
            if t.queried:
                t.unmark_queried(subnet)
            old = e = NONE
        else:
            old = t.head[s] if t.sel[s] else NONE
            e = t.entry_for(s, n.index)
        e_rid = t.e_rid
        e_metric = t.e_metric
        # The old selection's router ID as a token: None for the slot owner's.
        old_rid = e_rid.get(old) if old != NONE else None
        old_metric = e_metric[old] if old != NONE else INFINITY

        if e != NONE:
            rid = e_rid.get(e)
            same_rid = owned if rid is None else rid == router_id
            if e == old and not feasible and same_rid:
                self._send_seqno_request(key, n, now)
                counters.updates_skipped_selection += 1
                return
            if e_metric[e] == INFINITY and metric == INFINITY:
                counters.updates_skipped_selection += 1
                return
            t.e_seqno[e] = seqno
            e_metric[e] = metric
            if not same_rid:
                t.set_router_id(e, router_id)
            if feasible:
                t.e_expires[e] = now + hold_time(u.interval_cs, metric)
                self._schedule(e)
            else:
                if e != old:
                    counters.updates_skipped_selection += 1
                    return
                t.unselect(s)
        else:
            if metric == INFINITY or not feasible:
                if not feasible and old == NONE:
                    self._send_seqno_request(key, n, now)
                counters.updates_skipped_selection += 1
                return
            expires = now + hold_time(u.interval_cs, metric)
            e = t.add_entry(s, n.index, metric, seqno, expires, router_id, owned)
            self._schedule(e)

        new = self._find_best_route(s, now)
        if new != NONE:
            t.select(s, new)
        elif old != NONE:
            lost = t.owner(s) if old_rid is None else old_rid
            self._send_seqno_request((subnet, lost), None, now)
            t.unselect(s)

        if old != NONE and new != NONE:
            trigger = (
                e_rid.get(new) != old_rid or abs(e_metric[new] - old_metric) > BIG_METRIC_CHANGE
            )
            if old_metric == INFINITY and e_metric[new] != INFINITY:
                self._changes[subnet] = None
        else:
            # Acquired or lost: always triggered; acquisition is what floods new routes.
            trigger = old != NONE or new != NONE
            if trigger:
                self._changes[subnet] = None
        if trigger:
            self._propagate_selected(subnet, s, None, now)
        elif interested is not None and interested.sources:
            self._propagate_selected(subnet, s, interested.sources, now)

    def _entry_feasible(self, s: int, e: int, now: float) -> bool:
        t = self.table
        rid = t.e_rid.get(e)
        if rid is None:
            return self.sources.feasible_owned(s, t.e_seqno[e], t.e_metric[e], now)
        return self.sources.feasible((t.subnet(s), rid), t.e_seqno[e], t.e_metric[e], now, s)

    def _find_best_route(self, s: int, now: float) -> int:
        """Lowest metric plus link cost among feasible finite entries, with hysteresis."""
        t = self.table
        nbs = self._nbs
        e_metric = t.e_metric
        e_nb = t.e_nb
        e_next = t.e_next
        e_rid = t.e_rid
        e_seqno = t.e_seqno
        feasible_owned = self.sources.feasible_owned
        best = NONE
        best_total = 0
        e = t.head[s]
        while e != NONE:
            metric = e_metric[e]
            if metric != INFINITY and (
                feasible_owned(s, e_seqno[e], metric, now)
                if e not in e_rid
                else self._entry_feasible(s, e, now)
            ):
                total = metric_add(metric, nbs[e_nb[e]].link_cost)
                if best == NONE or total < best_total:
                    best, best_total = e, total
            e = e_next[e]
        current = t.head[s] if t.sel[s] else NONE
        if best != NONE and current != NONE and best != current:
            current_total = metric_add(e_metric[current], nbs[e_nb[current]].link_cost)
            much_better = best_total < metric_sub(current_total, SIGNIFICANT_METRIC_IMPROVEMENT)
            if not (much_better or e_metric[best] == 0):
                return current
        return best

    def _advertised(self, subnet: Subnet, s: int, e: int, metric: int, now: float) -> Update:
        t = self.table
        interval = (
            INTERVAL_NOT_REPEATING_CS
            if t.e_metric[e] == INFINITY and now > t.e_expires[e]
            else UPDATE_INTERVAL_CS
        )
        rid = t.e_rid.get(e)
        router_id = t.owner(s) if rid is None else rid
        seqno = t.e_seqno[e]
        # An entry's own ID is in e_rid exactly when it is not the owner's.
        column = s if rid is None else NONE
        self.sources.note_sent((subnet, router_id), seqno, metric, now, column)
        return Update(subnet, seqno, metric, router_id, interval)

    def _propagate_selected(
        self, subnet: Subnet, s: int, to: Iterable[Neighbour] | None, now: float
    ) -> None:
        """The selected route to everyone but its next hop, or our retraction to everyone.

        Each call is what the reference counts as a triggered update.
        """
        self.counters.triggered_updates += 1
        t = self.table
        skip: Neighbour | None = None
        if s != NONE and t.sel[s]:
            sre = t.head[s]
            skip = self._nbs[t.e_nb[sre]]
            upd = self._advertised(subnet, s, sre, metric_add(t.e_metric[sre], skip.link_cost), now)
        else:
            # Retractions carry our own router ID and seqno, like the reference (routing.md §4.8);
            # they are not recorded in the source table (RFC behaviour, a local difference only).
            upd = Update(subnet, self.seqno, INFINITY, self.router_id, UPDATE_INTERVAL_CS)
        out = self._outgoing
        for n in self._neighbours.values() if to is None else to:
            if n is skip:
                continue
            if n.alive:
                out.append((n.id, upd))
            else:
                self.counters.updates_to_dead_neighbour += 1

    def _send_own_update(self, to: Iterable[Neighbour], now: float) -> None:
        upd = Update(self.subnet, self.seqno, 0, self.router_id, UPDATE_INTERVAL_CS)
        self.sources.note_sent((self.subnet, self.router_id), self.seqno, 0, now)
        out = self._outgoing
        for n in to:
            out.append((n.id, upd))

    # --- expiry and dead neighbours -----------------------------------------------------------
    def _entry_expired(self, e: int, now: float) -> None:
        t = self.table
        s = t.e_slot[e]
        counters = self.counters
        if not (t.sel[s] and t.head[s] == e):
            counters.routes_expired_removed += 1
            t.remove_entry(e)
            return
        counters.routes_expired_retracted += 1
        counters.selected_routes_expired += 1
        t.e_metric[e] = INFINITY
        t.e_expires[e] = now + RETRACTED_ROUTE_HOLD_TIME
        self._schedule(e)
        best = self._find_best_route(s, now)
        if best != NONE:
            t.select(s, best)
        else:
            t.unselect(s)
        subnet = t.subnet(s)
        self._changes[subnet] = None
        self._propagate_selected(subnet, s, None, now)

    def _neighbour_died(self, n: Neighbour, now: float) -> None:
        n.alive = False
        self._retired.append(n.index)
        t = self.table
        if not t.nb_refs[n.index]:
            return
        for s in list(t.slots()):
            e = t.entry_for(s, n.index)
            if e == NONE:
                continue
            if not (t.sel[s] and t.head[s] == e):
                t.remove_entry(e)
                continue
            t.e_metric[e] = INFINITY
            t.e_expires[e] = now + RETRACTED_ROUTE_HOLD_TIME
            self._schedule(e)
            self._route_selection(s, now)

    def _route_selection(self, s: int, now: float) -> None:
        self.counters.route_selections += 1
        t = self.table
        first = t.head[s]
        first_selected = t.sel[s]
        had_valid = first_selected and t.e_metric[first] != INFINITY
        new = self._find_best_route(s, now)
        subnet = t.subnet(s)
        if new != NONE:
            if new == first and first_selected:
                return
            t.select(s, new)
            if not had_valid:
                self._changes[subnet] = None
        elif first_selected:
            self._send_seqno_request((subnet, t.router_id(first)), None, now)
            t.unselect(s)
            self._changes[subnet] = None
        self._propagate_selected(subnet, s, None, now)

    # --- route requests -----------------------------------------------------------------------
    def _send_route_request(self, subnet: Subnet, now: float) -> None:
        self._mark_queried(subnet, now)
        request = RouteRequest(subnet, 0)
        cached = self._rr_cache.get(subnet, now)
        skip = cached.receivers if cached is not None and cached.generation == 0 else ()
        receivers = [n for n in self._neighbours.values() if n.alive]
        out = self._outgoing
        for n in receivers:
            if n not in skip:
                out.append((n.id, request))
        self._rr_cache.put(subnet, RouteRequestInfo(0, receivers, now))

    def _on_route_request(self, n: Neighbour, rr: RouteRequest, now: float) -> None:
        subnet = rr.subnet
        if subnet is None:
            self.counters.wildcard_route_requests += 1
            self._send_full_dump(n, now)
            return
        if self.subnet.contains_subnet(subnet):
            self._send_own_update((n,), now)
            return
        # Safe deviation (routing.md §5.3): requests outside 400::/7 or shorter than /64 are
        # neither answered, forwarded nor marked; the reference never originates them.
        if subnet.prefix_len < NODE_PREFIX_LEN or not GLOBAL_SUBNET.contains_subnet(subnet):
            self.counters.requests_ignored += 1
            return
        t = self.table
        s = t.find(subnet)
        if s != NONE:
            if not t.sel[s]:
                return
            sre = t.head[s]
            via = self._nbs[t.e_nb[sre]]
            if via is n:
                return
            upd = self._advertised(subnet, s, sre, metric_add(t.e_metric[sre], via.link_cost), now)
            self._outgoing.append((n.id, upd))
            return
        deadline = t.queried.get(subnet)
        if deadline is not None:
            if deadline > now:
                return
            t.unmark_queried(subnet)
        generation = rr.generation + 1
        if generation >= MAX_RR_GENERATION:
            return
        self._mark_queried(subnet, now)
        cached = self._rr_cache.get(subnet, now)
        skip = cached.receivers if cached is not None and generation >= cached.generation else ()
        request = RouteRequest(subnet, generation)
        receivers = [x for x in self._neighbours.values() if x.alive]
        out = self._outgoing
        for x in receivers:
            if x is not n and x not in skip:
                out.append((x.id, request))
        self._rr_cache.put(subnet, RouteRequestInfo(generation, receivers, now))

    def _send_full_dump(self, n: Neighbour, now: float) -> None:
        t = self.table
        out = self._outgoing
        for s in list(t.slots()):
            if not t.sel[s]:
                continue
            sre = t.head[s]
            via = self._nbs[t.e_nb[sre]]
            if via is not n:
                metric = metric_add(t.e_metric[sre], via.link_cost)
                out.append((n.id, self._advertised(t.subnet(s), s, sre, metric, now)))
        self._send_own_update((n,), now)

    # --- seqno requests -----------------------------------------------------------------------
    def _send_seqno_request(self, source: SourceKey, to: Neighbour | None, now: float) -> int:
        """Returns how many neighbours it was sent to."""
        subnet, router_id = source
        fd = self.sources.get(source, now)
        want = seqno_next(fd[1] if fd is not None else 0)
        request = SeqnoRequest(subnet, want, router_id, SEQNO_REQUEST_HOP_COUNT)
        key = (router_id, subnet, want)
        cache = self._seqno_cache
        info = cache.get(key)
        if to is not None:
            targets: Iterable[Neighbour] = (to,)
        else:
            recent = (
                info.targets
                if info is not None and now - info.last_sent < SEQNO_BUMP_TIMEOUT
                else ()
            )
            t = self.table
            s = t.find(subnet)
            if s == NONE:
                targets = list(self._neighbours.values())
            else:
                nbs = self._nbs
                targets = [nbs[t.e_nb[e]] for e in t.entries(s)]
                targets = [x for x in targets if x not in recent]
        asked_us = info.sources if info is not None else ()
        out = self._outgoing
        sent = 0
        for target in targets:
            if target in asked_us or not target.alive:
                continue
            out.append((target.id, request))
            cache.record(key, target, None, now)
            sent += 1
        return sent

    def _on_seqno_request(self, n: Neighbour, r: SeqnoRequest, now: float) -> None:
        key = (r.router_id, r.subnet, r.seqno)
        cache = self._seqno_cache
        info = cache.get(key)
        actions = self.counters.seqno_requests
        if info is not None and now - info.last_sent <= SEQNO_DEDUP_TTL:
            actions["unhandled"] += 1
            return
        t = self.table
        s = t.find(r.subnet)
        sre = t.head[s] if s != NONE and t.sel[s] else NONE
        if (
            sre != NONE
            and t.e_metric[sre] != INFINITY
            and (r.router_id != t.router_id(sre) or not seqno_lt(t.e_seqno[sre], r.seqno))
        ):
            # The reference adds the requester's link cost here, not the next hop's.
            upd = self._advertised(r.subnet, s, sre, metric_add(t.e_metric[sre], n.link_cost), now)
            self._outgoing.append((n.id, upd))
            actions["reply_local"] += 1
            return
        if r.router_id == self.router_id:
            if r.subnet == self.subnet and seqno_gt(r.seqno, self.seqno):
                if now - self._last_bump >= SEQNO_BUMP_TIMEOUT:
                    self.seqno = seqno_next(self.seqno)
                    self._last_bump = now
                    self._send_own_update(self._neighbours.values(), now)
                    actions["bump_seqno"] += 1
            else:  # nothing of ours to answer and never forwarded, as with the reference
                actions["ttl_expired" if r.hop_count < 2 else "unhandled"] += 1
            return
        if r.hop_count < 2:
            actions["ttl_expired"] += 1
            return
        if s == NONE:
            actions["unhandled"] += 1
            return
        forwarded = SeqnoRequest(r.subnet, r.seqno, r.router_id, r.hop_count - 1)
        recent = (
            info.targets if info is not None and now - info.last_sent < SEQNO_BUMP_TIMEOUT else ()
        )
        nbs = self._nbs
        for want_feasible in (True, False):
            for e in t.entries(s):
                target = nbs[t.e_nb[e]]
                if (
                    target is n
                    or not target.alive
                    or t.e_metric[e] == INFINITY
                    or target in recent
                    or (want_feasible and not self._entry_feasible(s, e, now))
                ):
                    continue
                self._outgoing.append((target.id, forwarded))
                cache.record(key, target, n, now)
                actions["forward_feasible" if want_feasible else "forward_unfeasible"] += 1
                return
        actions["unhandled"] += 1


def _file(wheel: dict[int, array[int]], second: int, e: int) -> bool:
    """File entry ``e`` under ``second``; True if that second was not in the wheel yet."""
    filed = wheel.get(second)
    if filed is None:
        wheel[second] = array("I", (e,))
        return True
    filed.append(e)
    return False


def _advance(deadline: float, period: float, now: float) -> float:
    deadline += period
    return deadline if deadline > now else now + period
