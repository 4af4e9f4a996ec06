"""A few routers wired together on a virtual clock, every TLV through the real codec.

Smaller than ``mycelium.sim``: the router's unit tests need to see and filter single packets.
Neighbour ids are the names of the nodes at the other end of each link.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable

from mycelium.identity import Identity, RouterId, node_subnet
from mycelium.routing import Router
from mycelium.subnet import Subnet
from mycelium.wire.packet import encode_control
from mycelium.wire.stream import decode_packet
from mycelium.wire.tlv import Hello, Ihu, Tlv, Update

Filter = Callable[[str, str, Tlv], bool]


def identity(seed: int) -> Identity:
    return Identity.from_secret(random.Random(seed).randbytes(32))


def router_id(seed: int, suffix: int = 1) -> RouterId:
    return RouterId.generate(identity(seed).public_key, suffix.to_bytes(6, "big"))


def lone_router(now: float = 0.0) -> Router:
    """A router with two silent neighbours, "n" and "m", and nothing queued."""
    r = Router(router_id(100), now)
    r.add_neighbour("n", 10, now)
    r.add_neighbour("m", 10, now)
    r.take_outgoing()
    return r


def advance(r: Router, start: float, end: float) -> None:
    """Tick every second from ``start`` to ``end``, with every neighbour answering Hellos."""
    t = start
    while t < end:
        t = min(t + 1.0, end)
        r.tick(t)
        for nb in {nb for nb, tlv in r.take_outgoing() if type(tlv) is Hello}:
            r.handle_tlv(nb, Ihu(0), t)


def announce(seed: int, seqno: int = 0, metric: int = 0, suffix: int = 1) -> Update:
    """An Update for the /64 of the node with seed ``seed``, as its owner would send it."""
    rid = router_id(seed, suffix)
    return Update(node_subnet(rid.public_key), seqno, metric, rid)


class Lab:
    def __init__(self, names: list[str], now: float = 0.0) -> None:
        self.now = now
        self.routers = {name: Router(router_id(i), now) for i, name in enumerate(names)}
        self.latency: dict[tuple[str, str], float] = {}
        self.log: list[tuple[float, str, str, Tlv]] = []
        self.drop: Filter | None = None
        self._events: list[tuple[float, int, str, str, Tlv]] = []
        self._seq = itertools.count()

    def subnet(self, name: str) -> Subnet:
        return self.routers[name].subnet

    def connect(self, a: str, b: str, latency: float = 0.01, cost: int = 10) -> None:
        self.latency[(a, b)] = self.latency[(b, a)] = latency
        self.routers[a].add_neighbour(b, cost, self.now)
        self.routers[b].add_neighbour(a, cost, self.now)
        self.flush()

    def cut(self, a: str, b: str) -> None:
        del self.latency[(a, b)], self.latency[(b, a)]
        self.routers[a].remove_neighbour(b, self.now)
        self.routers[b].remove_neighbour(a, self.now)
        self.flush()

    def flush(self) -> None:
        """Move every pending TLV onto the wire (through the codec)."""
        for name, router in self.routers.items():
            for neighbour, tlv in router.take_outgoing():
                delay = self.latency.get((name, neighbour))
                if delay is None:
                    continue
                decoded = decode_packet(encode_control(tlv))
                self.log.append((self.now, name, neighbour, decoded))
                heapq.heappush(
                    self._events, (self.now + delay, next(self._seq), name, neighbour, decoded)
                )

    def run(self, until: float) -> None:
        """Deliver packets and fire timers in time order up to ``until``."""
        while True:
            self.flush()
            next_event = self._events[0][0] if self._events else float("inf")
            next_timer = min(r.next_deadline() for r in self.routers.values())
            t = min(next_event, next_timer)
            if t > until:
                break
            self.now = max(self.now, t)
            if next_event <= next_timer:
                _, _, src, dst, tlv = heapq.heappop(self._events)
                if (src, dst) in self.latency and not (self.drop and self.drop(src, dst, tlv)):
                    self.routers[dst].handle_tlv(src, tlv, self.now)
            else:
                for r in self.routers.values():
                    if r.next_deadline() <= self.now:
                        r.tick(self.now)
        self.now = until

    def sent(self, since: float = 0.0, kind: type | None = None) -> list[tuple[str, str, Tlv]]:
        return [
            (src, dst, tlv)
            for t, src, dst, tlv in self.log
            if t >= since and (kind is None or type(tlv) is kind)
        ]

    def next_hop(self, at: str, dst: str) -> str | None:
        entry = self.routers[at].selected_entry(self.subnet(dst))
        if entry is None or entry.metric == 0xFFFF:
            return None
        return entry.neighbour.id  # type: ignore[no-any-return]

    def path(self, src: str, dst: str) -> list[str] | None:
        """Follow selected routes hop by hop; None if it dead-ends; raises on a loop."""
        hops = [src]
        while hops[-1] != dst:
            nxt = self.next_hop(hops[-1], dst)
            if nxt is None:
                return None
            if nxt in hops:
                raise AssertionError(f"forwarding loop {[*hops, nxt]}")
            hops.append(nxt)
        return hops
