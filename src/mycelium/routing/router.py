"""The reference's Babel-derived router as a sans-I/O state machine (docs/routing.md §3 to §7).

Inputs are method calls carrying ``now``; outputs are drained with ``take_*``. The rules live in
one module per concept, as in babeld: ``neighbour`` (Hello/IHU, link cost), ``selection``
(Updates, feasibility, route selection, expiry), ``announce`` (our own /64), ``propagate``
(Updates we send), ``requests`` (route and seqno requests) and ``timers``. This class is their
public face: links come and go, TLVs arrive, time passes, the data plane asks for next hops.
"""

from __future__ import annotations

from ..identity import RouterId
from ..subnet import Subnet
from ..wire.tlv import Hello, Ihu, RouteRequest, SeqnoRequest, Tlv, Update
from . import announce, requests, selection
from .constants import (
    FAST_HELLO,
    PAUSE_THRESHOLD,
    ROUTE_ALMOST_EXPIRED,
    SEQNO_DEDUP_TTL,
    SOURCE_HOLD_DURATION,
    UPDATE_INTERVAL,
    HelloTimers,
)
from .decisions import LOCAL, NO_ROUTE, Decision, Forward, N, Queue, RouteView
from .limits import RouterLimits
from .neighbour import DEFAULT_LIMITS, Neighbour, excuse_pause, send_hellos, silent
from .state import RouterState
from .table import NONE, RouteEntry, key_subnet
from .timers import advance

_MASK64 = ((1 << 64) - 1) << 64


class Router(RouterState[N]):
    def __init__(
        self,
        router_id: RouterId,
        now: float,
        limits: RouterLimits = DEFAULT_LIMITS,
        hello: HelloTimers = FAST_HELLO,
    ) -> None:
        """A router announcing the /64 derived from ``router_id``'s public key."""
        super().__init__(router_id, now, limits)
        self.hello = hello
        self._next_hello = now + hello.interval
        self._next_dead_check = now + hello.check_every
        self._next_announce = now + UPDATE_INTERVAL
        self._next_sweep = now + SEQNO_DEDUP_TTL
        self._next_source_sweep = now + SOURCE_HOLD_DURATION

    # --- link layer -------------------------------------------------------------------------
    def add_neighbour(
        self, neighbour: N, static_cost: int, now: float, rtt_ms: int | None = None
    ) -> None:
        """A connection came up. Queues our /64 Update, our selected routes (within the dump
        budget) and pending route requests to it.

        ``rtt_ms``: a round trip the runtime already measured on this path (a punched link's
        checks, docs/nat.md); it replaces the default cost a new neighbour starts with."""
        if neighbour in self.by_id:
            return
        index = self.table.new_neighbour_index(self.retired)
        n = self.by_id[neighbour] = Neighbour(neighbour, static_cost, now, index, self.limits)
        if rtt_ms is not None:
            n.smoothed = max(0, min(rtt_ms, 0xFFFF))
        if index == len(self.by_index):
            self.by_index.append(n)
        else:
            self.by_index[index] = n
        self.counters.neighbours_added += 1
        requests.greet_neighbour(self, n, now)
        for subnet, deadline in self.table.queried.items():
            if deadline > now:
                self.outgoing.append((neighbour, RouteRequest(subnet, 0)))

    def remove_neighbour(self, neighbour: N, now: float) -> None:
        """A connection went down (transport error, API removal, or declared dead)."""
        n = self.by_id.get(neighbour)
        if n is not None:
            self._drop(n, now)

    def _drop(self, n: Neighbour[N], now: float) -> None:
        del self.by_id[n.id]
        # The reference counts every removal as a death too (both go through its dead-peer
        # handler), whichever side noticed it.
        self.counters.neighbours_removed += 1
        self.counters.neighbours_died += 1
        selection.neighbour_died(self, n, now)

    def handle_tlv(self, neighbour: N, tlv: Tlv, now: float) -> None:
        """Process one control TLV received from ``neighbour``."""
        n = self.by_id.get(neighbour)
        if n is None:
            self.counters.tlvs_from_unknown_neighbour += 1
            return
        kind = type(tlv)
        self.counters.tlvs_by_type[kind] += 1
        if kind is Update:
            selection.on_update(self, n, tlv, now)  # type: ignore[arg-type]
        elif kind is Hello:
            if n.ihus.take(now):
                self.outgoing.append((neighbour, n.ihu(self.hello)))
            else:
                self.counters.ihus_rate_limited += 1
        elif kind is Ihu:
            n.on_ihu(now)
        elif kind is RouteRequest:
            requests.on_route_request(self, n, tlv, now)  # type: ignore[arg-type]
        elif kind is SeqnoRequest:
            requests.on_seqno_request(self, n, tlv, now)  # type: ignore[arg-type]

    def tick(self, now: float) -> None:
        """Run every timer due at or before ``now``."""
        if self._next_hello <= now:
            self._next_hello = advance(self._next_hello, self.hello.interval, now)
            send_hellos(self.by_id.values(), self.outgoing, self.hello, now)
        if self._next_dead_check <= now:
            late = now - self._next_dead_check
            if late > PAUSE_THRESHOLD:
                excuse_pause(self.by_id.values(), late, now)
            self._next_dead_check = advance(self._next_dead_check, self.hello.check_every, now)
            for n in silent(self.by_id.values(), self.hello, now):
                self.dead.append(n.id)
                self._drop(n, now)
        if self.bump_due <= now:
            announce.bump_seqno(self, now)
        if self._next_announce <= now:
            self._next_announce = advance(self._next_announce, UPDATE_INTERVAL, now)
            announce.send_own_update(self, self.by_id.values(), now)
        if self._next_sweep <= now:
            self._next_sweep = advance(self._next_sweep, SEQNO_DEDUP_TTL, now)
            self.seqno_cache.sweep(now)
            self.rr_cache.sweep(now)
        if self._next_source_sweep <= now:
            self._next_source_sweep = advance(self._next_source_sweep, SOURCE_HOLD_DURATION, now)
            self.sources.sweep(now)
        t = self.table
        for deadline, subnet in self.markers.due(now):
            if t.queried.get(subnet) == deadline:
                t.unmark_queried(subnet)
        for e in self.wheel.due(now, t.e_expires):
            selection.entry_expired(self, e, now)

    def next_deadline(self) -> float:
        """The latest ``now`` at which ``tick`` must be called again."""
        return min(
            self._next_hello,
            self._next_dead_check,
            self._next_announce,
            self._next_sweep,
            self._next_source_sweep,
            self.wheel.next_second(),
            self.markers.next_deadline(),
            self.bump_due,
        )

    # --- outputs, drained by the runtime after every call above -------------------------------
    def take_outgoing(self) -> list[tuple[N, Tlv]]:
        """Control TLVs to send, in order, each as its own control packet."""
        out, self.outgoing = self.outgoing, []
        return out

    def take_dead_neighbours(self) -> list[N]:
        """Neighbours declared dead (no IHU for 43 s); the runtime closes their connections."""
        dead, self.dead = self.dead, []
        return dead

    def take_route_changes(self) -> list[Subnet]:
        """Subnets whose selected route appeared or was lost since the last call.

        The data plane releases (or drops) packets queued under these subnets.
        """
        changes = list(self.changes)
        self.changes.clear()
        return changes

    # --- data plane ---------------------------------------------------------------------------
    def route(self, dst: bytes, now: float, origin: bool = False) -> Decision[N]:
        """Forwarding decision for a data packet to ``dst`` (after the hop-limit step; see
        docs/routing.md §7.1). Sends route or seqno requests as side effects (visible through
        ``take_outgoing``). ``origin``: we are encrypting this packet ourselves, so entries
        without a selected one mean Queue (after a seqno request), not NoRoute."""
        address = int.from_bytes(dst, "big")
        if address & _MASK64 == self.own_net:
            return LOCAL
        t = self.table
        found = t.longest_match(address)
        if found is not None:
            key, s, deadline = found
            if s != NONE:
                if t.sel[s]:
                    sre = t.head[s]
                    if t.e_expires[sre] - now < ROUTE_ALMOST_EXPIRED:
                        self._request_route(Subnet(address & _MASK64, 64), now, origin)
                    forward: Forward[N] | None = t.forward.get(s)
                    if forward is None:
                        forward = t.forward[s] = Forward(
                            self.by_index[t.e_nb[sre]].id, t.public_key(s)
                        )
                    return forward
                if not origin:
                    return NO_ROUTE
                subnet64 = Subnet(address & _MASK64, 64)
                # Deviation: when no live neighbour can take the seqno request (its only
                # advertisers are gone), ask everyone with a route request instead of waiting
                # for the dead entries to expire.
                source = (key_subnet(key), t.router_id(t.head[s]))
                if not requests.send_seqno_request(self, source, None, now):
                    self._request_route(subnet64, now, origin)
                return Queue(subnet64)
            if deadline > now:
                return Queue(Subnet(address & _MASK64, 64))
            t.unmark_queried(key_subnet(key))
        subnet64 = Subnet(address & _MASK64, 64)
        self._request_route(subnet64, now, origin)
        return Queue(subnet64)

    def _request_route(self, subnet: Subnet, now: float, origin: bool) -> None:
        """Flood a route request for ``subnet`` unless its budget is spent: one for packets we
        send, one for packets we forward, so neighbours cannot starve our own discovery."""
        bucket = self.origin_requests if origin else self.transit_requests
        if bucket.take(now):
            requests.flood_route_request(self, subnet, 0, None, now)
        else:
            self.counters.origin_requests_rate_limited += 1

    def public_key_for(self, address: bytes) -> bytes | None:
        """Key of the longest-prefix entry covering ``address``, selected or not (the subnet
        owner's, docs/routing.md §7.3)."""
        found = self.table.longest_match(int.from_bytes(address, "big"))
        if found is not None and found[1] != NONE:
            return self.table.public_key(found[1])
        return None

    def request_route(self, address: bytes, now: float) -> None:
        """Start route discovery for the /64 of ``address`` unless one is already under way."""
        value = int.from_bytes(address, "big")
        if value & _MASK64 == self.own_net:
            return
        found = self.table.longest_match(value)
        if found is not None:
            key, s, deadline = found
            if s != NONE or deadline > now:
                return
            self.table.unmark_queried(key_subnet(key))
        self._request_route(Subnet(value & _MASK64, 64), now, True)

    # --- views for the API, metrics and the simulator's checks --------------------------------
    def routes(self) -> list[RouteView[N]]:
        t = self.table
        nbs = self.by_index
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

    def link_cost(self, neighbour: N) -> int | None:
        n = self.by_id.get(neighbour)
        return None if n is None else n.link_cost

    def rtt(self, neighbour: N) -> int | None:
        """The neighbour's last Hello/IHU round trip in ms (None before the first)."""
        n = self.by_id.get(neighbour)
        return None if n is None else n.rtt

    def neighbours(self) -> list[N]:
        return list(self.by_id)

    def selected_origins(self) -> list[RouterId]:
        """The router ID behind every selected route (whose keys the proxy prober knocks on)."""
        t = self.table
        return [t.router_id(t.head[s]) for s in t.slots() if t.sel[s]]

    def selected_entry(self, subnet: Subnet) -> RouteEntry | None:
        t = self.table
        e = t.selected_of(subnet)
        return None if e == NONE else t.snapshot(e, self.by_index[t.e_nb[e]])

    def selected_hop(self, subnet: Subnet) -> tuple[N, int] | None:
        """(next hop, received metric) of the subnet's selected entry: ``selected_entry``
        without the snapshot, for checks walking every pair of a large simulation."""
        t = self.table
        e = t.selected_of(subnet)
        return None if e == NONE else (self.by_index[t.e_nb[e]].id, t.e_metric[e])
