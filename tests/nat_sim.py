"""A virtual world for NAT traversal's sans-I/O parts: hosts behind simulated NATs, an overlay
that carries the exchange, a virtual clock. No sockets, no sleeps.

The NATs behave like Linux masquerade: a mapping per private endpoint (``symmetric``: per
private endpoint *and* destination, on a fresh port), and address-and-port-dependent filtering
(an inbound datagram passes only from an endpoint the mapping already sent to).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from mycelium.nat import stun
from mycelium.nat.candidates import Candidate, CandidateKind, NatType
from mycelium.nat.checks import Checks
from mycelium.nat.negotiation import LocalInfo, Negotiator

Address = tuple[str, int]
STUN_SERVER = ("198.51.100.1", 3478)


@dataclass
class Nat:
    public_ip: str
    symmetric: bool = False
    _out: dict[tuple[Address, Address | None], int] = field(default_factory=dict)
    _in: dict[int, tuple[Address, set[Address]]] = field(default_factory=dict)
    _ports: itertools.count = field(default_factory=lambda: itertools.count(40000))

    def outbound(self, private: Address, remote: Address) -> Address:
        key = (private, remote if self.symmetric else None)
        port = self._out.get(key)
        if port is None:
            port = private[1] if not self.symmetric and private[1] not in self._in else 0
            while port == 0 or port in self._in:
                port = next(self._ports)
            self._out[key] = port
            self._in[port] = (private, set())
        self._in[port][1].add(remote)
        return self.public_ip, port

    def inbound(self, port: int, remote: Address) -> Address | None:
        entry = self._in.get(port)
        return entry[0] if entry is not None and remote in entry[1] else None


@dataclass
class Host:
    key: bytes
    private: Address
    nat: Nat | None
    negotiator: Negotiator
    checks: Checks
    dials: list = field(default_factory=list)


class World:
    def __init__(self, overlay_delay: float = 0.05, udp_delay: float = 0.01) -> None:
        self.now = 0.0
        self.overlay_delay = overlay_delay
        self.udp_delay = udp_delay
        self.hosts: list[Host] = []
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.links: list[tuple[bytes, bytes, Address, float]] = []
        self.datagrams = 0

    def add(self, key: bytes, private: Address, nat: Nat | None) -> Host:
        counter = itertools.count(int.from_bytes(key[:2], "big") << 32)
        random = lambda size: next(counter).to_bytes(size, "big")  # noqa: E731
        host = Host(key, private, nat, Negotiator(key, lambda: key[:32], random), Checks(random))
        candidates = [Candidate(CandidateKind.HOST, *private)]
        nat_type = NatType.OPEN
        if nat is not None:
            first = nat.outbound(private, STUN_SERVER)
            second = nat.outbound(private, (STUN_SERVER[0], STUN_SERVER[1] + 1))
            nat_type = NatType.SYMMETRIC if first != second else NatType.ENDPOINT_INDEPENDENT
            candidates.append(Candidate(CandidateKind.REFLEXIVE, *first))
        host.negotiator.set_local(LocalInfo(tuple(candidates), nat_type))
        self.hosts.append(host)
        return host

    # --- the clock ----------------------------------------------------------------------------
    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def run(self, until: float) -> None:
        while True:
            deadline = self._events[0][0] if self._events else math.inf
            for host in self.hosts:
                deadline = min(
                    deadline, host.negotiator.next_deadline(), host.checks.next_deadline()
                )
            if deadline > until:
                self.now = until
                return
            self.now = max(self.now, deadline)
            while self._events and self._events[0][0] <= self.now:
                heapq.heappop(self._events)[2]()
            for host in self.hosts:
                host.negotiator.tick(self.now)
                host.checks.tick(self.now)
                self.pump(host)

    # --- the runtime's job, as NatTraversal._flush does it ------------------------------------
    def pump(self, host: Host) -> None:
        now = self.now
        n, c = host.negotiator, host.checks
        for key in n.take_queries():
            peer = self.host(key)
            self.at(now + 2 * self.overlay_delay, lambda h=host, k=peer.key: self._answer(h, k))
        for key, message in n.take_messages():
            peer = self.host(key)
            self.at(
                now + self.overlay_delay,
                lambda p=peer, k=host.key, m=message: self._message(p, k, m),
            )
        for session in n.take_cancelled():
            c.stop(session)
        for punch in n.take_punches():
            c.start(punch, now)
            c.tick(now)
        for peer, session in c.take_failures():
            n.punch_failed(peer, session, now)
        for dial in c.take_dials():
            host.dials.append((now, dial))
            self.at(now + 2 * self.udp_delay, lambda h=host, d=dial: self._connect(h, d))
        for data, address in c.take_datagrams():
            self.send(host, data, address)

    def _answer(self, host: Host, key: bytes) -> None:
        host.negotiator.query_answered(key, self.now)
        self.pump(host)

    def _message(self, host: Host, sender: bytes, message: object) -> None:
        host.negotiator.received(sender, message, self.now)  # type: ignore[arg-type]
        self.pump(host)

    def _connect(self, host: Host, dial) -> None:  # type: ignore[no-untyped-def]
        """The QUIC handshake: it works if a datagram gets through both ways."""
        server = self.route(host, dial.address)
        if server is None:
            host.negotiator.punch_failed(dial.peer, dial.session, self.now)
            host.checks.stop(dial.session)
            return
        target, seen_as = server
        if target.checks.expecting(seen_as) is None or self.route(target, seen_as) is None:
            host.negotiator.punch_failed(dial.peer, dial.session, self.now)
            host.checks.stop(dial.session)
            return
        for side, other in ((host, target), (target, host)):
            side.checks.stop(dial.session)
            side.negotiator.link_up(other.key, self.now)
        self.links.append((host.key, target.key, dial.address, self.now))

    # --- the network --------------------------------------------------------------------------
    def host(self, key: bytes) -> Host:
        return next(h for h in self.hosts if h.key == key)

    def route(self, sender: Host, address: Address) -> tuple[Host, Address] | None:
        """Where a datagram from ``sender`` to ``address`` lands, and as coming from where."""
        for host in self.hosts:
            if host.private == address and (host.nat is sender.nat):
                return host, sender.private  # same LAN: no translation
        source = sender.private
        if sender.nat is not None:
            source = sender.nat.outbound(sender.private, address)
        for host in self.hosts:
            if host.nat is None and host.private == address:
                return host, source
            if host.nat not in (None, sender.nat) and host.nat.public_ip == address[0]:
                private = host.nat.inbound(address[1], source)
                if private == host.private:
                    return host, source
        return None

    def send(self, sender: Host, data: bytes, address: Address) -> None:
        self.datagrams += 1
        landed = self.route(sender, address)
        if landed is None:
            return
        target, source = landed
        self.at(self.now + self.udp_delay, lambda: self._receive(target, data, source))

    def _receive(self, host: Host, data: bytes, source: Address) -> None:
        decoded = stun.decode(data)
        if decoded.message.cls is stun.StunClass.REQUEST:
            host.checks.request(decoded, source, self.now)
        else:
            host.checks.response(decoded, source, self.now)
        self.pump(host)
