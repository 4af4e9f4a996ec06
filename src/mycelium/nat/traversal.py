"""NAT traversal inside a running node: the runtime around the sans-I/O parts (docs/nat.md).

It owns what they cannot: the QUIC socket (STUN out and in), name resolution of STUN servers,
one timer, QUIC dials and accepts of punched links and their registration with the node as
``holePunched`` peers. The exchange rides the node's message engine on the reserved topic: we
queue into it and ask the node to flush; the node hands us what arrived (``collect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import socket
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .. import wake
from ..identity import overlay_address
from ..links.base import Link
from ..links.endpoint import Endpoint, socket_text
from ..links.quic import QuicEndpoint, socket_address
from ..subnet import Subnet
from . import protocol, stun
from .candidates import Candidate, CandidateKind, NatType, normal_host, usable_address
from .checks import Checks, Dial
from .mapping import MappingProbe, MappingResult
from .negotiation import LocalInfo, Negotiator, Punch

if TYPE_CHECKING:
    from ..links.quic_link import QuicLink  # loaded with the first QUIC connection
    from ..node import Node

log = logging.getLogger(__name__)

#: How often the destinations of our traffic are looked at.
SCAN_INTERVAL = 2.0
#: PINGs on a punched link: NATs forget idle UDP mappings after 30 s or more.
KEEPALIVE_INTERVAL = 15.0
#: A punched link that carried no data packets either way for this long is closed (it would
#: otherwise be kept alive, and fed every route, for good).
LINK_IDLE = 600.0
#: How long a punched link's dialler has to present its credentials.
AUTH_TIMEOUT = 5.0
#: How long the message bus keeps retrying an exchange message.
MESSAGE_TRY = 10.0
#: Where the routing table is asked which local address reaches the Internet (no packet is
#: sent: a connected UDP socket only picks its source address).
ROUTE_PROBES = ("192.0.2.1", "2001:db8::1")

Address = tuple[str, int]


@dataclass
class TraversalCounters:
    stun_malformed: int = 0
    stun_ignored: int = 0
    bad_messages: int = 0
    links_punched: int = 0
    auth_refused: int = 0


def host_addresses(targets: Iterable[str], listen_host: str) -> list[str]:
    """Our addresses that others on the way to ``targets`` would see before any NAT: the
    source address the routing table picks for each (or the one address we listen on)."""
    if listen_host not in ("::", "0.0.0.0", ""):
        host = normal_host(listen_host)
        return [host] if usable_address(host) else []
    found: list[str] = []
    for target in targets:
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                host = normal_host(probe.getsockname()[0])
        except OSError:
            continue
        if usable_address(host) and host not in found:
            found.append(host)
    return found


class NatTraversal:
    def __init__(self, node: Node, endpoint: QuicEndpoint, flush: Callable[[], None]) -> None:
        """``flush``: the node's, which sends what we queued in its message engine."""
        self.node = node
        self._quic = endpoint
        self._node_flush = flush
        self.servers = node.config.stun_servers
        self.probe = MappingProbe()
        self.negotiator = Negotiator(
            node.identity.public_key, lambda: endpoint.certificate_fingerprint
        )
        self.checks = Checks()
        self.counters = TraversalCounters()
        #: Punched link -> (the node's key, the endpoint it is listed under).
        self._links: dict[Link, tuple[bytes, Endpoint]] = {}
        self._idle_closed: set[Link] = set()
        self._traffic: set[bytes] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._next_scan = 0.0
        self._resolving = False
        self._flush_soon = False
        self._hosts: list[str] = []
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        node = self.node
        self._quic.stun_handler = self._datagram
        node.message_engine.reserved.serve(protocol.TOPIC)
        node.dataplane.tun_destinations = self._traffic
        now = node.now()
        self._next_scan = now + SCAN_INTERVAL
        # The first round gathers (with no STUN server, host candidates only, at once).
        self.probe.next_round = now
        self._flush()

    def close(self) -> None:
        self._closed = True
        self._quic.stun_handler = None
        self.node.dataplane.tun_destinations = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- hooks the node calls -----------------------------------------------------------------
    def claim(self, link: QuicLink) -> bool:
        """An accepted QUIC link: ours if it comes from the node we are punching towards (it
        must then present our secret), otherwise the node treats it as any inbound link."""
        punch = self.checks.expecting((link.remote_host, link.remote_port))
        if punch is None:
            return False
        self._spawn(self._admit(link, punch))
        return True

    def link_closed(self, link: Link) -> None:
        known = self._links.pop(link, None)
        if known is not None:
            idle = link in self._idle_closed
            self._idle_closed.discard(link)
            log.info("direct link to %s closed%s", _short(known[0]), " (idle)" if idle else "")
            self.negotiator.link_down(known[0], self.node.now(), idle=idle)
            self._flush_later()

    def collect(self) -> None:
        """Take what the message engine received for us (the node calls this in its flush)."""
        engine = self.node.message_engine
        now = self.node.now()
        for message in engine.reserved.take_internal():
            try:
                decoded = protocol.decode(message.data)
            except protocol.ProtocolError:
                self.counters.bad_messages += 1
                continue
            self.negotiator.received(message.src_pk, decoded, now)
            self._flush_later()
        for address, _topic in engine.reserved.take_answers():
            key = self.node.router.public_key_for(address)
            if key is not None and overlay_address(key) == address:
                self.negotiator.query_answered(key, now)
                self._flush_later()

    # --- the STUN socket ----------------------------------------------------------------------
    def _datagram(self, data: bytes, addr: tuple) -> None:
        try:
            decoded = stun.decode(data)
            source = (normal_host(str(addr[0])), int(addr[1]))
        except ValueError:
            self.counters.stun_malformed += 1
            return
        now = self.node.now()
        message = decoded.message
        handled = False
        if message.method == stun.BINDING:
            if message.cls is stun.StunClass.REQUEST:
                handled = self.checks.request(decoded, source, now)
            elif message.cls in (stun.StunClass.SUCCESS, stun.StunClass.ERROR):
                handled = self.probe.response(decoded, source, now) or self.checks.response(
                    decoded, source, now
                )
        if not handled:
            self.counters.stun_ignored += 1
        self._flush()

    def _send(self, datagrams: Iterable[tuple[bytes, Address]]) -> None:
        for data, (host, port) in datagrams:
            with contextlib.suppress(ValueError, OSError):
                self._quic.sendto(data, socket_address(Endpoint("quic", host, port)))

    # --- the message bus ----------------------------------------------------------------------
    def _flush_later(self) -> None:
        """From inside the node's flush or link handling: run ours once that is done."""
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    # --- gathering ----------------------------------------------------------------------------
    async def _stun_round(self) -> None:
        loop = asyncio.get_running_loop()
        addresses: list[Address] = []
        for host, port in self.servers:
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.debug("STUN server %s not resolved: %s", host, exc)
                continue
            for family in (socket.AF_INET, socket.AF_INET6):
                found = [info[4] for info in infos if info[0] == family]
                if found:
                    addresses.append((normal_host(str(found[0][0])), port))
        self._resolving = False
        if self._closed:
            return
        port = self._quic.port
        targets = [a for a, _ in addresses] + list(ROUTE_PROBES)
        self._hosts = host_addresses(targets, self.node.config.listen_host)
        self.probe.start_round(addresses, self.node.now(), [(h, port) for h in self._hosts])
        self._flush()

    def _update_local(self, result: MappingResult) -> None:
        port = self._quic.port
        candidates = [Candidate(CandidateKind.HOST, h, port) for h in self._hosts]
        candidates += [
            Candidate(CandidateKind.REFLEXIVE, h, p)
            for h, p in result.public
            if (h, p) not in {c.address for c in candidates}
        ]
        nat_type = result.nat_type
        local = LocalInfo(tuple(candidates[: protocol.MAX_CANDIDATES]), nat_type)
        previous = self.negotiator.local
        if previous is None or (previous.candidates, previous.nat_type) != (
            local.candidates,
            local.nat_type,
        ):
            log.info(
                "NAT traversal: %s NAT, candidates %s",
                nat_type.label,
                ", ".join(str(c) for c in local.candidates) or "none",
            )
        self.negotiator.set_local(local)

    # --- traffic ------------------------------------------------------------------------------
    def _scan(self, now: float) -> None:
        """Offer a direct link to the nodes we sent traffic to that are not our neighbours."""
        router = self.node.router
        for address in self._traffic:
            key = router.public_key_for(address)
            if key is None:
                continue
            entry = router.selected_entry(Subnet.of(address, 64))
            if entry is None or entry.metric == 0:  # unreachable, or a neighbour already
                continue
            self.negotiator.traffic(key, now)
        self._traffic.clear()
        for link in [k for k in self._links if now - k.last_data > LINK_IDLE]:
            self._idle_closed.add(link)
            link.close()

    # --- punched links ------------------------------------------------------------------------
    async def _dial(self, dial: Dial) -> None:
        endpoint = Endpoint("quic", dial.address[0], dial.address[1])
        try:
            link = await self._quic.dial(
                endpoint, self.node, pin=dial.fingerprint, token=dial.secret
            )
        except (ConnectionError, OSError) as exc:
            log.debug("punched dial to %s failed: %s", endpoint, exc)
            self.checks.stop(dial.session)
            self.negotiator.punch_failed(dial.peer, dial.session, self.node.now())
            self._flush()
            return
        self._adopt(link, dial.peer, dial.session, dial.rtt)

    async def _admit(self, link: QuicLink, punch: Punch) -> None:
        try:
            token = await asyncio.wait_for(asyncio.shield(link.auth), AUTH_TIMEOUT)
        except (TimeoutError, ConnectionError):
            token = b""
        import hmac  # loaded with the first punched link (0.7 MB with hashlib at rest)

        if not hmac.compare_digest(token, punch.local_secret):
            self.counters.auth_refused += 1
            link.close("no valid credentials for a punched link")
            return
        self._adopt(link, punch.peer, punch.session, self.checks.measured_rtt(punch.session))

    def _adopt(self, link: QuicLink, peer: bytes, session: bytes, rtt: float | None) -> None:
        self.checks.stop(session)
        if self._closed or self.negotiator.session_of(peer) != session:
            link.close("punch no longer wanted")
            return
        endpoint = Endpoint("quic", normal_host(link.remote_host), link.remote_port)
        link.last_data = self.node.now()
        self._links[link] = (peer, endpoint)
        self.counters.links_punched += 1
        link.keep_alive(KEEPALIVE_INTERVAL)
        self.negotiator.link_up(peer, self.node.now())
        log.info(
            "direct link to %s over %s (hole punched, %s)",
            _short(peer),
            endpoint.socket_address,
            "rtt unknown" if rtt is None else f"rtt {rtt * 1000:.1f} ms",
        )
        self.node.register_punched(link, endpoint, None if rtt is None else int(rtt * 1000))
        self._flush()

    # --- the pump -----------------------------------------------------------------------------
    def _flush(self) -> None:
        self._flush_soon = False
        if self._closed:
            return
        now = self.node.now()
        negotiator, checks, engine = self.negotiator, self.checks, self.node.message_engine
        for result in self.probe.take_results():
            self._update_local(result)
        queued = False
        for key in negotiator.take_queries():
            engine.query(overlay_address(key), protocol.TOPIC)
            queued = True
        for key, message in negotiator.take_messages():
            address, data = overlay_address(key), message.encode()
            engine.push(address, data, now, topic=protocol.TOPIC, try_duration=MESSAGE_TRY)
            queued = True
        for session in negotiator.take_cancelled():
            checks.stop(session)
        for punch in negotiator.take_punches():
            log.debug(
                "punching to %s (%s) at %s",
                _short(punch.peer),
                "dialling" if punch.controlling else "listening",
                ", ".join(str(c) for c in punch.remote_candidates),
            )
            checks.start(punch, now)
            checks.tick(now)
        for peer, session in checks.take_failures():
            log.debug("no direct path to %s found", _short(peer))
            negotiator.punch_failed(peer, session, now)
        for dial in checks.take_dials():
            self._spawn(self._dial(dial))
        self._send(self.probe.take_datagrams())
        self._send(checks.take_datagrams())
        self._arm()
        if queued:
            self._node_flush()

    def _arm(self) -> None:
        deadline = min(
            self._next_scan,
            self.negotiator.next_deadline(),
            self.checks.next_deadline(),
            math.inf if self._resolving else self.probe.next_deadline(),
        )
        if self._timer is not None and deadline >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        if math.isfinite(deadline):
            self._timer = wake.call_at(asyncio.get_running_loop(), deadline, self._on_timer)
        else:
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        now = self.node.now()
        if now >= self._next_scan:
            self._next_scan = now + SCAN_INTERVAL
            self._scan(now)
        if not self._resolving and not self.probe.running and now >= self.probe.next_round:
            self._resolving = True
            self._spawn(self._stun_round())
        self.probe.tick(now)
        self.negotiator.tick(now)
        self.checks.tick(now)
        self._flush()

    # --- the API ------------------------------------------------------------------------------
    def _mapping(self) -> dict[str, Any]:
        result = self.probe.result
        return {
            "natType": (result.nat_type if result else NatType.UNKNOWN).label,
            "publicAddresses": [socket_text(h, p) for h, p in (result.public if result else ())],
        }

    def summary(self) -> dict[str, Any]:
        """What ``mycelium status`` shows: the mapping and how many direct links we hold."""
        return {
            "enabled": True,
            "stunServers": len(self.servers),
            **self._mapping(),
            "directLinks": len(self._links),
        }

    def status(self) -> dict[str, Any]:
        now = self.node.now()
        result = self.probe.result
        local = self.negotiator.local
        return {
            "enabled": True,
            "stunServers": [socket_text(h, p) for h, p in self.servers],
            **self._mapping(),
            "mappedBy": (
                []
                if result is None
                else [
                    {
                        "server": socket_text(*server),
                        "mapped": None if mapped is None else socket_text(*mapped),
                    }
                    for server, mapped in result.answers.items()
                ]
            ),
            "lastMapping": None if result is None else round(now - result.finished_at),
            "candidates": [
                {"kind": c.kind.name.lower(), "address": socket_text(c.host, c.port)}
                for c in (local.candidates if local else ())
            ],
            "nodes": self.negotiator.snapshot(now),
            "links": [
                {"publicKey": peer.hex(), "endpoint": str(endpoint)}
                for peer, endpoint in self._links.values()
            ],
            "counters": {
                **asdict(self.counters),
                **asdict(self.checks.counters),
                "offers_dropped": self.negotiator.offers_dropped,
            },
        }


def _short(key: bytes) -> str:
    """A node's overlay address, which is what logs and users know it by."""
    return str(ipaddress.IPv6Address(overlay_address(key)))
