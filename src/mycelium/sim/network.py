"""Many routers on one virtual clock, joined by links with latency, jitter, loss and up/down.

Every control TLV a router emits is encoded to its wire frame and decoded again (once per frame,
shared by the neighbours it goes to), so a run exercises the codecs as well as the routing rules.
Links deliver in order (they stand for TCP connections); a link that goes down drops what is in
flight, and both routers see the neighbour go away, as the runtime reports a closed connection.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..identity import Identity, RouterId
from ..routing import Forward, Local, Router
from ..routing.constants import FAST_HELLO, HelloTimers
from ..wire.packet import DataPacket, encode_control
from ..wire.stream import decode_packet
from ..wire.tlv import Tlv
from .topology import Topology

#: Static cost of a TCP link over IPv6 (docs/wire.md §6.7).
LINK_STATIC_COST = 10

_DELIVER, _TICK, _ACTION = 0, 1, 2


def _decode_control(frame: bytes) -> Tlv:
    packet = decode_packet(frame)
    if isinstance(packet, DataPacket):
        raise AssertionError(f"a control frame decoded as {packet!r}")
    return packet


@dataclass(slots=True)
class LinkState:
    latency: float
    jitter: float
    loss: float
    up: bool = False
    silent: bool = False  # up at both ends but carrying nothing (a dead path, no close seen)
    generation: int = 0
    last_arrival: float = 0.0  # shared by both directions: keeps each one in order


class Simulation:
    def __init__(self, topology: Topology, seed: int = 0, hello: HelloTimers = FAST_HELLO) -> None:
        """``hello``: the routers' Hello timers (ours by default; REFERENCE_HELLO for the
        reference's)."""
        self.hello = hello
        self.topology = topology
        self.rng = random.Random(seed)
        self.now = 0.0
        self.names = list(topology.nodes)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.identities = [Identity.from_secret(self.rng.randbytes(32)) for _ in self.names]
        self.routers = [self._new_router(i) for i in range(len(self.names))]
        self.addresses = [i.address for i in self.identities]
        self.links: dict[tuple[int, int], LinkState] = {}
        self.neighbours: list[list[int]] = [[] for _ in self.names]
        for link in topology.links:
            a, b = self.index[link.a], self.index[link.b]
            state = LinkState(link.latency, link.jitter, link.loss)
            self.links[(a, b)] = self.links[(b, a)] = state
            self.neighbours[a].append(b)
            self.neighbours[b].append(a)
        self.bytes_sent = 0
        self.packets_sent = 0
        # Links deliver in order, so a link direction's packets wait in its own FIFO and only
        # its head sits in the event heap: the heap holds at most one entry per direction, not
        # one per packet in flight (millions while a large network joins).
        # (when, sequence, kind, payload): the payload's type follows the kind (a link direction,
        # a router index, or an action).
        self._events: list[tuple[float, int, int, Any]] = []
        self._in_flight: dict[tuple[int, int], deque[tuple[float, Tlv, int]]] = {
            key: deque() for key in self.links
        }
        self._seq = itertools.count()
        self._scheduled = [math.inf] * len(self.names)

    def _new_router(self, i: int) -> Router[int]:
        rid = RouterId.generate(self.identities[i].public_key, self.rng.randbytes(6))
        return Router(rid, self.now, hello=self.hello)

    # --- topology changes -------------------------------------------------------------------
    def start(self) -> None:
        """Bring every link up at the current time."""
        for a, b in self.link_pairs():
            self.link_up(a, b)

    def link_pairs(self) -> list[tuple[int, int]]:
        """Every link once, as (lower index, higher index)."""
        return [(a, b) for (a, b) in self.links if a < b]

    def link_up(self, a: int, b: int) -> None:
        state = self.links[(a, b)]
        if state.up:
            return
        state.up = True
        state.silent = False
        state.generation += 1
        self.routers[a].add_neighbour(b, LINK_STATIC_COST, self.now)
        self.routers[b].add_neighbour(a, LINK_STATIC_COST, self.now)
        self._flush(a)
        self._flush(b)

    def link_down(self, a: int, b: int) -> None:
        state = self.links[(a, b)]
        if not state.up:
            return
        state.up = False
        state.silent = False
        state.generation += 1
        self.routers[a].remove_neighbour(b, self.now)
        self.routers[b].remove_neighbour(a, self.now)
        self._flush(a)
        self._flush(b)

    def silence(self, a: int, b: int) -> None:
        """The link stops carrying packets but neither end is told: only the routers' dead
        neighbour check (no IHU for 43 s) notices, as with a cable pulled somewhere between."""
        state = self.links[(a, b)]
        if state.up:
            state.silent = True

    def restart(self, i: int) -> None:
        """The node's process restarts: same key, fresh router ID, seqno 0, links reconnect."""
        up = [j for j in self.neighbours[i] if self.links[(i, j)].up]
        for j in up:
            self.link_down(i, j)
        self.routers[i] = self._new_router(i)
        self._scheduled[i] = math.inf
        for j in up:
            self.link_up(i, j)

    def probe(self, src: int, dst: int) -> bool:
        """Send one data packet from ``src`` to ``dst`` the way the data plane routes it: every
        hop looks the destination up (which may send route or seqno requests, or refresh an
        almost expired route). True if it arrived, False if it was queued or dropped."""
        address = self.addresses[dst]
        at = src
        routers = self.routers
        for hop in range(len(routers)):
            decision = routers[at].route(address, self.now, origin=hop == 0)
            self._flush(at)
            if type(decision) is Local:
                return True
            if type(decision) is not Forward:
                return False
            at = decision.neighbour
        return False  # looped

    def packets_in_flight(self) -> int:
        return sum(len(q) for q in self._in_flight.values())

    def at(self, t: float, action: object) -> None:
        """Run ``action(simulation)`` at virtual time ``t``."""
        heapq.heappush(self._events, (t, next(self._seq), _ACTION, action))

    # --- the event loop ---------------------------------------------------------------------
    def run_until(self, t: float) -> None:
        events = self._events
        in_flight = self._in_flight
        routers = self.routers
        links = self.links
        while events and events[0][0] <= t:
            when, _, kind, payload = heapq.heappop(events)
            self.now = when
            if kind == _DELIVER:
                queue = in_flight[payload]
                _, tlv, generation = queue.popleft()
                if queue:
                    heapq.heappush(events, (queue[0][0], next(self._seq), _DELIVER, payload))
                src, dst = payload
                state = links[payload]
                if state.up and state.generation == generation:
                    routers[dst].handle_tlv(src, tlv, when)
                    self._flush(dst)
            elif kind == _TICK:
                i = payload
                if self._scheduled[i] == when:
                    self._scheduled[i] = math.inf
                    routers[i].tick(when)
                    self._flush(i)
            else:
                payload(self)
        self.now = max(self.now, t)

    def _flush(self, i: int) -> None:
        router = self.routers[i]
        for j in router.take_dead_neighbours():
            self.link_down(i, j)
        router.take_route_changes()
        out = router.take_outgoing()
        if out:
            # One TLV object sent to several neighbours is one frame: encode it and decode the
            # bytes once, and hand every receiver what the decoder made of them.
            wire: dict[int, tuple[int, Tlv]] = {}
            rng = self.rng
            for j, tlv in out:
                state = self.links.get((i, j))
                if state is None or not state.up:
                    continue
                sent = wire.get(id(tlv))
                if sent is None:
                    frame = encode_control(tlv)
                    sent = wire[id(tlv)] = (len(frame), _decode_control(frame))
                self.bytes_sent += sent[0]
                self.packets_sent += 1
                if state.silent or (state.loss and rng.random() < state.loss):
                    continue
                arrival = self.now + state.latency
                if state.jitter:
                    arrival += state.jitter * rng.random()
                if arrival < state.last_arrival:
                    arrival = state.last_arrival
                state.last_arrival = arrival
                queue = self._in_flight[(i, j)]
                if not queue:
                    heapq.heappush(self._events, (arrival, next(self._seq), _DELIVER, (i, j)))
                queue.append((arrival, sent[1], state.generation))
        deadline = router.next_deadline()
        if deadline < self._scheduled[i]:
            self._scheduled[i] = deadline
            heapq.heappush(self._events, (deadline, next(self._seq), _TICK, i))
