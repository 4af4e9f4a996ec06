"""The Babel-derived router of the reference (routing.md §3 to §7), as a sans-I/O state machine.

Inputs are method calls carrying ``now``; outputs are drained with ``take_*``. Every timer lives
in one heap (route expiry, queried markers) or in a handful of periodic deadlines, so one process
can run thousands of routers on a virtual clock.
"""

from __future__ import annotations

import heapq
import math
import random
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
from .table import RouteEntry, RouteList, RouteTable

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
        self.sources = SourceTable()
        self._own_net = self.subnet.network
        self._neighbours: dict[NeighbourId, Neighbour] = {}
        self._seqno_cache = SeqnoCache()
        self._rr_cache = RouteRequestCache()
        self._last_bump = now
        # Route expiry in a timer wheel of whole seconds (a slot costs one list pointer per entry,
        # not a heap tuple), queried markers in a heap of (deadline, subnet). Both delete lazily:
        # a refresh files the entry again and the superseded filing is skipped when its second
        # comes. Expiry therefore runs up to one second late, invisible next to 1050 s.
        self._wheel: dict[int, list[RouteEntry]] = {}
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
        n = self._neighbours[neighbour] = Neighbour(neighbour, static_cost, now)
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
        while seconds and seconds[0] <= now:
            second = heapq.heappop(seconds)
            filed = self._wheel.pop(second)
            self._wheel_items -= len(filed)
            for entry in filed:
                if math.ceil(entry.expires) == second:
                    self._entry_expired(entry, now)

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
        found = self.table.longest_match(address)
        if found is not None:
            slot = found[1]
            if type(slot) is RouteList:
                sre = slot.selected()
                if sre is not None:
                    if sre.expires - now < ROUTE_ALMOST_EXPIRED:
                        self._send_route_request(Subnet(address & _MASK64, 64), now)
                    forward = slot.forward
                    if forward is None:
                        forward = slot.forward = Forward(sre.neighbour.id, slot.public_key)
                    return forward  # type: ignore[return-value]
                if not origin:
                    return _NO_ROUTE
                subnet64 = Subnet(address & _MASK64, 64)
                first = slot.entries[0] if slot.entries else None
                # Deviation: when no live neighbour can take the seqno request (its only
                # advertisers are gone), ask everyone with a route request instead of waiting
                # for the dead entries to expire.
                if first is None or not self._send_seqno_request(
                    (first.subnet, first.router_id), None, now
                ):
                    self._send_route_request(subnet64, now)
                return Queue(subnet64)
            if slot > now:  # type: ignore[operator]
                return Queue(Subnet(address & _MASK64, 64))
            self.table.unmark_queried(Subnet(*found[0]))
        subnet64 = Subnet(address & _MASK64, 64)
        self._send_route_request(subnet64, now)
        return Queue(subnet64)

    def public_key_for(self, address: bytes) -> bytes | None:
        """Key of the longest-prefix entry covering ``address``, selected or not (§7.3)."""
        found = self.table.longest_match(int.from_bytes(address, "big"))
        if found is not None and type(found[1]) is RouteList:
            return found[1].public_key  # type: ignore[union-attr]
        return None

    def request_route(self, address: bytes, now: float) -> None:
        """Start route discovery for the /64 of ``address`` unless one is already under way."""
        value = int.from_bytes(address, "big")
        if value & _MASK64 == self._own_net:
            return
        found = self.table.longest_match(value)
        if found is not None:
            slot = found[1]
            if type(slot) is RouteList or slot > now:  # type: ignore[operator]
                return
            self.table.unmark_queried(Subnet(*found[0]))
        self._send_route_request(Subnet(value & _MASK64, 64), now)

    # --- views for the API and metrics --------------------------------------------------------
    def routes(self) -> list[RouteView]:
        return [
            RouteView(subnet, e.neighbour.id, e.metric, e.seqno, e.selected)
            for subnet, rl in self.table.lists.items()
            for e in rl.entries
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
        origins = []
        for rl in self.table.lists.values():
            sre = rl.selected()
            if sre is not None:
                origins.append(sre.router_id)
        return origins

    def selected_entry(self, subnet: Subnet) -> RouteEntry | None:
        rl = self.table.lists.get(subnet)
        return None if rl is None else rl.selected()

    # --- timers -------------------------------------------------------------------------------
    def _schedule(self, entry: RouteEntry) -> None:
        second = math.ceil(entry.expires)
        filed = self._wheel.get(second)
        if filed is None:
            self._wheel[second] = [entry]
            heapq.heappush(self._wheel_seconds, second)
        else:
            filed.append(entry)
        self._wheel_items += 1
        if self._wheel_items > self._wheel_limit:
            self._compact_wheel()

    def _compact_wheel(self) -> None:
        """Drop superseded filings (every refresh files the entry again)."""
        wheel: dict[int, list[RouteEntry]] = {}
        for rl in self.table.lists.values():
            for e in rl.entries:
                wheel.setdefault(math.ceil(e.expires), []).append(e)
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
        key: SourceKey = (subnet, router_id)
        seqno_cache = self._seqno_cache
        interested = seqno_cache.get((router_id, subnet, u.seqno)) if seqno_cache else None
        feasible = self.sources.feasible(key, u.seqno, metric, now)
        table = self.table
        rl = table.lists.get(subnet)
        new_list = rl is None
        if rl is None:
            if not feasible or metric == INFINITY:
                if not feasible:
                    self._send_seqno_request(key, n, now)
                self.counters.updates_not_interested += 1
                return
            rl = RouteList(router_id)
        old = rl.selected()
        old_router_id = old.router_id if old is not None else None
        old_metric = old.metric if old is not None else INFINITY

        e = rl.entry_for(n)
        skipped = self.counters
        if e is not None:
            if e.selected and not feasible and e.router_id == router_id:
                self._send_seqno_request(key, n, now)
                skipped.updates_skipped_selection += 1
                return
            if e.metric == INFINITY and metric == INFINITY:
                skipped.updates_skipped_selection += 1
                return
            e.seqno = u.seqno
            e.metric = metric
            if e.router_id != router_id:
                e.router_id = router_id
            if feasible:
                e.expires = now + hold_time(u.interval_cs, metric)
                self._schedule(e)
            if not feasible:
                if not e.selected:
                    skipped.updates_skipped_selection += 1
                    return
                rl.unselect()
        else:
            if metric == INFINITY or not feasible:
                if not feasible and old is None:
                    self._send_seqno_request(key, n, now)
                skipped.updates_skipped_selection += 1
                return
            # Share one copy of the subnet and of the 40-byte ID among a subnet's entries.
            if not new_list:
                subnet = rl.entries[0].subnet
                for other in rl.entries:
                    if other.router_id == router_id:
                        router_id = other.router_id
                        break
            e = RouteEntry(
                subnet, router_id, n, metric, u.seqno, now + hold_time(u.interval_cs, metric)
            )
            rl.entries.append(e)
            if new_list:
                table.add_list(subnet, rl)
            self._schedule(e)

        new = self._find_best_route(rl, now)
        if new is not None:
            rl.select(new)
        elif old is not None:
            self._send_seqno_request((subnet, old_router_id), None, now)  # type: ignore[arg-type]
            rl.unselect()

        if old is not None and new is not None:
            trigger = (
                new.router_id != old_router_id or abs(new.metric - old_metric) > BIG_METRIC_CHANGE
            )
            if old_metric == INFINITY and new.metric != INFINITY:
                self._changes[subnet] = None
        else:
            # Acquired or lost: always triggered; acquisition is what floods new routes.
            trigger = old is not None or new is not None
            if trigger:
                self._changes[subnet] = None
        if trigger:
            self._propagate_selected(subnet, None, now)
        elif interested is not None and interested.sources:
            self._propagate_selected(subnet, interested.sources, now)

    def _find_best_route(self, rl: RouteList, now: float) -> RouteEntry | None:
        """Lowest metric plus link cost among feasible finite entries, with hysteresis."""
        feasible = self.sources.feasible
        best: RouteEntry | None = None
        best_total = 0
        for e in rl.entries:
            if e.metric == INFINITY or not feasible(
                (e.subnet, e.router_id), e.seqno, e.metric, now
            ):
                continue
            total = metric_add(e.metric, e.neighbour.link_cost)
            if best is None or total < best_total:
                best, best_total = e, total
        current = rl.selected()
        if (
            best is not None
            and current is not None
            and (best.router_id != current.router_id or best.neighbour is not current.neighbour)
        ):
            current_total = metric_add(current.metric, current.neighbour.link_cost)
            much_better = best_total < metric_sub(current_total, SIGNIFICANT_METRIC_IMPROVEMENT)
            if not (much_better or best.metric == 0):
                return current
        return best

    def _advertised(self, sre: RouteEntry, metric: int, now: float) -> Update:
        interval = (
            INTERVAL_NOT_REPEATING_CS
            if sre.metric == INFINITY and now > sre.expires
            else UPDATE_INTERVAL_CS
        )
        upd = Update(sre.subnet, sre.seqno, metric, sre.router_id, interval)
        self.sources.note_sent((sre.subnet, sre.router_id), sre.seqno, metric, now)
        return upd

    def _propagate_selected(
        self, subnet: Subnet, to: Iterable[Neighbour] | None, now: float
    ) -> None:
        """The selected route to everyone but its next hop, or our retraction to everyone.

        Each call is what the reference counts as a triggered update.
        """
        self.counters.triggered_updates += 1
        rl = self.table.lists.get(subnet)
        sre = rl.selected() if rl is not None else None
        if sre is not None:
            upd = self._advertised(sre, metric_add(sre.metric, sre.neighbour.link_cost), now)
            skip: Neighbour | None = sre.neighbour
        else:
            # Retractions carry our own router ID and seqno, like the reference (routing.md §4.8);
            # they are not recorded in the source table (RFC behaviour, a local difference only).
            upd = Update(subnet, self.seqno, INFINITY, self.router_id, UPDATE_INTERVAL_CS)
            skip = None
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
    def _entry_expired(self, e: RouteEntry, now: float) -> None:
        subnet = e.subnet
        rl = self.table.lists.get(subnet)
        if rl is None or rl.entry_for(e.neighbour) is not e:
            return  # removed meanwhile
        counters = self.counters
        if not e.selected:
            counters.routes_expired_removed += 1
            rl.remove(e)
            if not rl.entries:
                self.table.remove_list(subnet)
            return
        counters.routes_expired_retracted += 1
        counters.selected_routes_expired += 1
        e.metric = INFINITY
        e.expires = now + RETRACTED_ROUTE_HOLD_TIME
        self._schedule(e)
        best = self._find_best_route(rl, now)
        if best is not None:
            rl.select(best)
        else:
            rl.unselect()
        self._changes[subnet] = None
        self._propagate_selected(subnet, None, now)

    def _neighbour_died(self, n: Neighbour, now: float) -> None:
        n.alive = False
        table = self.table
        for subnet, rl in list(table.lists.items()):
            e = rl.entry_for(n)
            if e is None:
                continue
            if not e.selected:
                rl.remove(e)
                if not rl.entries:
                    table.remove_list(subnet)
                continue
            e.metric = INFINITY
            e.expires = now + RETRACTED_ROUTE_HOLD_TIME
            self._schedule(e)
            self._route_selection(subnet, rl, now)

    def _route_selection(self, subnet: Subnet, rl: RouteList, now: float) -> None:
        self.counters.route_selections += 1
        first = rl.entries[0]
        had_valid = first.selected and first.metric != INFINITY
        new = self._find_best_route(rl, now)
        if new is not None:
            if new is first and first.selected:
                return
            rl.select(new)
            if not had_valid:
                self._changes[subnet] = None
        elif first.selected:
            self._send_seqno_request((first.subnet, first.router_id), None, now)
            rl.unselect()
            self._changes[subnet] = None
        self._propagate_selected(subnet, None, now)

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
        table = self.table
        rl = table.lists.get(subnet)
        if rl is not None:
            sre = rl.selected()
            if sre is None or sre.neighbour is n:
                return
            upd = self._advertised(sre, metric_add(sre.metric, sre.neighbour.link_cost), now)
            self._outgoing.append((n.id, upd))
            return
        deadline = table.queried.get(subnet)
        if deadline is not None:
            if deadline > now:
                return
            table.unmark_queried(subnet)
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
        out = self._outgoing
        for rl in self.table.lists.values():
            sre = rl.selected()
            if sre is not None and sre.neighbour is not n:
                upd = self._advertised(sre, metric_add(sre.metric, sre.neighbour.link_cost), now)
                out.append((n.id, upd))
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
            rl = self.table.lists.get(subnet)
            if rl is None:
                targets = list(self._neighbours.values())
            else:
                targets = [e.neighbour for e in rl.entries if e.neighbour not in recent]
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
        rl = self.table.lists.get(r.subnet)
        sre = rl.selected() if rl is not None else None
        if (
            sre is not None
            and sre.metric != INFINITY
            and (r.router_id != sre.router_id or not seqno_lt(sre.seqno, r.seqno))
        ):
            # The reference adds the requester's link cost here, not the next hop's.
            upd = self._advertised(sre, metric_add(sre.metric, n.link_cost), now)
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
        if rl is None:
            actions["unhandled"] += 1
            return
        forwarded = SeqnoRequest(r.subnet, r.seqno, r.router_id, r.hop_count - 1)
        recent = (
            info.targets if info is not None and now - info.last_sent < SEQNO_BUMP_TIMEOUT else ()
        )
        feasible = self.sources.feasible
        for want_feasible in (True, False):
            for e in rl.entries:
                target = e.neighbour
                if (
                    target is n
                    or not target.alive
                    or e.metric == INFINITY
                    or target in recent
                    or (
                        want_feasible
                        and not feasible((e.subnet, e.router_id), e.seqno, e.metric, now)
                    )
                ):
                    continue
                self._outgoing.append((target.id, forwarded))
                cache.record(key, target, n, now)
                actions["forward_feasible" if want_feasible else "forward_unfeasible"] += 1
                return
        actions["unhandled"] += 1


def _advance(deadline: float, period: float, now: float) -> float:
    deadline += period
    return deadline if deadline > now else now + period
