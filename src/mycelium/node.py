"""The runtime: the only layer with sockets, the TUN fd, tasks and clocks.

It feeds bytes and the loop's time into the sans-I/O router and data plane, and flushes what they
return, batch by batch: no task, await or log line per packet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING, Final, TypeVar

from . import wake
from .allow import AllowList
from .crypto import KeyCache
from .dataplane import DataPlane
from .identity import (
    RouterId,
    load_or_create_key_file,
    overlay_address,
    overlay_destination,
)
from .links import quic, tcp
from .links.admission import InboundLimits
from .links.backlog import BacklogCounts
from .links.base import Link
from .links.endpoint import Endpoint
from .links.listening import ListenError, listener_opened
from .links.peer_manager import PeerManager, PeerType
from .logs import fields
from .messages.engine import MessageEngine, ReceivedMessage
from .messages.service import MessageService
from .node_config import NodeConfig
from .proxy import Proxy
from .routing import Router
from .wire.packet import DataPacket, encode_control
from .wire.stream import Packet, split_data
from .wire.tlv import Tlv

if TYPE_CHECKING:
    from .links.discovery import Discovery
    from .links.tls_psk import TlsListener
    from .links.vsock import VsockListener
    from .nat.traversal import NatTraversal
    from .tun.device import PacketDevice

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["ListenError", "Node"]

#: Packets read from the TUN per wake-up in traffic.
TUN_BATCH: Final = 256
#: TUN wake-ups closer together than this (seconds) are traffic (``_tun_readable``).
TUN_BUSY_GAP: Final = 0.001


class Node:
    """A Mycelium node. ``async with Node(config) as node:`` runs it inside any asyncio program."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.identity = config.identity or load_or_create_key_file(Path(config.key_file))
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The loop's ``time`` once started, bound once: looked up on the loop at each call, it
        #: showed in an idle ping's profile.
        self._clock: Callable[[], float] = time.monotonic
        self.router_id = RouterId.generate(self.identity.public_key)
        self.started_at = time.monotonic()
        now = self._now_boot()
        self.router: Router[Link] = Router(self.router_id, now, config.router_limits)
        self.keys = KeyCache(self.identity.secret)
        self.dataplane = DataPlane(self.identity, self.router, self.keys)
        if config.allow_from:
            self.dataplane.allow = AllowList(config.allow_rules, self.identity.subnet)
        self.message_engine = MessageEngine(
            self.identity.address,
            self.identity.public_key,
            self.router.public_key_for,
            topics=config.topic_config,
        )
        self.links: set[Link] = set()
        #: Inbound connection caps of the stream (TCP or TLS) and QUIC listeners.
        self.stream_limits = InboundLimits(config.max_inbound, config.max_inbound_per_source)
        self.quic_limits = InboundLimits(config.max_inbound, config.max_inbound_per_source)
        #: What the backlogs of closed links coalesced and dropped (live links count their own).
        self.closed_backlogs = BacklogCounts()
        #: Links whose transport asked us to stop writing (see ``_pace_tun``).
        self._congested: set[Link] = set()
        self._tun_paused = False
        #: When the TUN last woke us (``_tun_readable`` reads one packet after a pause).
        self._tun_woken = -math.inf
        #: Whether the flush of the current link batch wrote to the TUN (``link_packets``).
        self._tun_written = False
        #: The router's version as of the last full flush (``_flush_data``).
        self._flushed_version = -1
        #: Wall nanoseconds spent in the router per TLV type (the metric tlv_handling_time).
        self.tlv_handling_ns: dict[type, int] = {}
        # Every protocol has a dialer: as in the reference, a peer whose transport is off here
        # (QUIC disabled or private, tls:// without a private network) stays in the table and
        # its dial attempts fail, instead of the node refusing to start.
        dialers: dict[str, Callable[[Endpoint], Awaitable[Link]]] = {
            "tcp": self._dial_tcp,
            "tls": self._dial_tls,
            "quic": self._dial_quic,
            "vsock": self._dial_vsock,
        }
        if config.private is not None:
            dialers["tcp"] = self._dial_tls
        self.peer_manager = PeerManager(dialers, self._register)
        self._quic: quic.QuicEndpoint | None = None
        self._vsock: VsockListener | None = None
        self.tun: PacketDevice | None = None
        self._listeners: list[asyncio.Server | TlsListener] = []
        self._discovery: Discovery | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        #: The message bus's waiting callers and topic sockets, once the node runs (``start()``).
        self.messages: MessageService | None = None
        #: Hole punching, once the node runs with QUIC (None otherwise).
        self.nat: NatTraversal | None = None
        self.proxy = Proxy(self._proxy_targets, listen=config.proxy_listen)
        self._stopped = asyncio.Event()

    def _now_boot(self) -> float:
        return time.monotonic()

    def now(self) -> float:
        return self._clock()

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        if not self.config.no_tun:
            from .tun import TunDevice

            # A handful of ioctls: quick enough to run on the loop itself.
            self.tun = TunDevice.open(self.config.tun_name, self.identity.address)
            self._loop.add_reader(self.tun.fileno(), self._tun_readable)
        private = self.config.private
        host, tcp_port = self.config.listen_host, self.config.tcp_listen_port
        mark = self.config.firewall_mark
        listener: asyncio.Server | TlsListener
        if private is None:
            listening = tcp.listen(
                host, tcp_port, self, self._accepted, firewall_mark=mark, limits=self.stream_limits
            )
            listener = await listener_opened("TCP", tcp_port, listening)
        else:
            from .links import tls_psk  # tlslite only where a private network needs it

            psk = tls_psk.listen(
                host,
                tcp_port,
                self,
                self._accepted,
                network_name=private.name,
                key=private.key,
                firewall_mark=mark,
                limits=self.stream_limits,
            )
            listener = await listener_opened("TLS", tcp_port, psk)
        self._listeners.append(listener)
        if not self.config.disable_quic and private is None:
            quic_port = self.config.quic_listen_port
            opening = quic.listen(
                host,
                quic_port,
                self,
                self._accepted_quic,
                self.router_id.text(),
                limits=self.quic_limits,
            )
            self._quic = await listener_opened("QUIC (UDP)", quic_port, opening)
        if self.config.vsock_listen_port is not None:
            # Plain even in a private network (docs/wire.md §6.4.1); a failure costs only vsock.
            from .links import vsock

            try:
                self._vsock = await vsock.listen(
                    self.config.vsock_listen_port, self, self._accepted
                )
            except OSError as exc:
                log.error("vsock listener not started: %s", exc)
        for endpoint in self.config.endpoints:
            self.peer_manager.add_peer(endpoint)
        self.peer_manager.start()
        if not self.config.disable_peer_discovery:
            from .links.discovery import Discovery

            self._discovery = Discovery(
                self.router_id,
                self.config.tcp_listen_port,
                self.config.peer_discovery_port,
                self.config.peer_discovery_interfaces,
                self._discovered,
                firewall_mark=self.config.firewall_mark,
            )
            try:
                await self._discovery.start()
            except OSError as exc:
                log.warning("link-local discovery disabled: %s", exc)
                self._discovery = None
        self.messages = MessageService(self.message_engine, self._flush, self.now)
        if self._quic is not None and self.config.hole_punching:
            from .nat.traversal import NatTraversal

            self.nat = NatTraversal(self, self._quic, self._flush)
            self.nat.start()
        self._flush()
        log.info(
            "node started",
            extra=fields(
                address=self.identity.address_text,
                public_key=self.public_key,
                listening=" ".join(str(e) for e in self.listen_endpoints) or None,
                tun=None if self.tun is None else self.config.tun_name,
                peers=len(self.config.peers) or None,
            ),
        )

    async def stop(self) -> None:
        if self.nat is not None:
            self.nat.close()
        if self.messages is not None:
            self.messages.close()
        await self.proxy.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._discovery is not None:
            self._discovery.close()
        for listener in self._listeners:
            listener.close()
        if self._quic is not None:
            self._quic.close()
        if self._vsock is not None:
            self._vsock.close()
        await self.peer_manager.stop()
        for link in list(self.links):
            link.close()
        if self.tun is not None and self._loop is not None:
            _stop_reading(self._loop, self.tun.fileno())
            self.tun.close()
            self.tun = None
        self._stopped.set()

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- links ------------------------------------------------------------------------------
    async def _dial_tcp(self, endpoint: Endpoint) -> Link:
        return await tcp.dial(endpoint, self, firewall_mark=self.config.firewall_mark)

    async def _dial_quic(self, endpoint: Endpoint) -> Link:
        if self._quic is None:
            raise ConnectionError("QUIC is disabled")
        return await self._quic.dial(endpoint, self)

    async def _dial_vsock(self, endpoint: Endpoint) -> Link:
        from .links import vsock

        return await vsock.dial(endpoint, self)

    def _accepted_quic(self, link: Link) -> None:
        from .links.quic_link import QuicLink  # loaded with the connection itself

        assert isinstance(link, QuicLink)
        if self.nat is not None and self.nat.claim(link):
            return  # a punched link: registered once it showed its credentials
        self.peer_manager.inbound(link, Endpoint("quic", link.remote_host, link.remote_port))
        self._register(link)

    async def _dial_tls(self, endpoint: Endpoint) -> Link:
        private = self.config.private
        if private is None:
            raise ConnectionError("tls:// peers need a private network (use tcp://)")
        from .links import tls_psk

        return await tls_psk.dial(
            endpoint,
            self,
            network_name=private.name,
            key=private.key,
            firewall_mark=self.config.firewall_mark,
        )

    def _discovered(self, endpoint: Endpoint) -> bool:
        """Discovered peers are dialled over TCP, or TLS in a private network."""
        if self.config.private is not None:
            endpoint = endpoint.with_proto("tls")
        return self.peer_manager.add_discovered(endpoint)

    def _accepted(self, link: Link) -> None:
        assert isinstance(link, tcp.StreamLink)
        endpoint = Endpoint(link.protocol, link.remote_host, link.remote_port)
        self.peer_manager.inbound(link, endpoint)
        self._register(link)

    def register_punched(self, link: Link, endpoint: Endpoint, rtt_ms: int | None) -> None:
        """A hole-punched link (either side): a peer of its own type, whose cost starts from
        the round trip measured while punching."""
        self.peer_manager.inbound(link, endpoint, PeerType.HOLE_PUNCHED)
        self._register(link, rtt_ms)

    def _register(self, link: Link, rtt_ms: int | None = None) -> None:
        link.handler = self
        self.links.add(link)
        self._pace_tun()
        self.router.add_neighbour(link, link.static_cost, self.now(), rtt_ms)
        link.start()
        self._flush()

    def link_packets(self, link: Link, packets: list[Packet]) -> None:
        if link not in self.links:
            return
        now = self._clock()  # not ``now()``: a call less for a lone packet (see _tun_readable)
        if len(packets) == 1 and isinstance(packets[0], DataPacket):  # a ping after a pause
            data: list[DataPacket] = [packets[0]]
            control: list[Tlv] = []
        else:
            data, control = split_data(packets)
        if control:
            router = self.router
            spent = self.tlv_handling_ns
            for tlv in control:
                started = perf_counter_ns()
                router.handle_tlv(link, tlv, now)
                kind = type(tlv)
                spent[kind] = spent.get(kind, 0) + perf_counter_ns() - started
        self._tun_written = False
        if data:
            link.last_data = now
            self.dataplane.from_link(data, now)
        if not control:
            self._flush_data(now)
        else:
            self._flush()
        if self._tun_written and not self._tun_paused:
            # The kernel answers some packets inside the write that hands them over (an echo
            # request, a TCP segment that earns an ACK or opens the sender's window): read the
            # answer now instead of after another trip round the loop.
            self._tun_readable()

    def link_closed(self, link: Link, reason: str) -> None:
        if link not in self.links:
            return
        self.links.discard(link)
        self.closed_backlogs.add(link.backlog)
        self._congested.discard(link)
        self._pace_tun()
        log.debug("link closed", extra=fields(link=link.connection_id, reason=reason))
        self.peer_manager.link_closed(link, reason)
        if self.nat is not None:
            self.nat.link_closed(link)
        self.router.remove_neighbour(link, self.now())
        self._flush()

    def link_pause_writing(self, link: Link) -> None:
        self._congested.add(link)
        self._pace_tun()

    def link_resume_writing(self, link: Link) -> None:
        self._congested.discard(link)
        self._pace_tun()

    def _pace_tun(self) -> None:
        """Stop reading the TUN while every link is congested, and only then: one neighbour
        that stops reading must not stall this node's traffic to all the others (its own
        frames wait in its bounded backlog, links/backlog.py)."""
        pause = bool(self.links) and self.links <= self._congested
        if self.tun is None or self._loop is None or pause == self._tun_paused:
            return
        self._tun_paused = pause
        if pause:
            _stop_reading(self._loop, self.tun.fileno())
        else:
            self._loop.add_reader(self.tun.fileno(), self._tun_readable)

    # --- TUN --------------------------------------------------------------------------------
    def _tun_readable(self) -> None:
        tun = self.tun
        if tun is None:
            return
        # On a CPU back from idle each layer of compiled calls costs a lone packet microseconds
        # (docs/architecture.md §6): the clock is read without the ``now()`` around it.
        now = self._clock()
        # In traffic the wake-ups follow each other closely: read a batch. After a pause take
        # one packet (a ping, an ACK) and send it: the read that would find the queue empty
        # costs as much as the packet on a CPU back from idle, and if more is queued the loop
        # wakes us again at once.
        busy = now - self._tun_woken < TUN_BUSY_GAP
        self._tun_woken = now
        packets = tun.read_batch(TUN_BATCH if busy else 1)
        if packets:
            self.dataplane.from_tun(packets, now)
            self._flush_data(now)

    def _proxy_targets(self) -> list[str]:
        """The key-derived address of every selected route's origin."""
        return sorted(
            {
                str(ipaddress.IPv6Address(overlay_address(rid[:32])))
                for rid in self.router.selected_origins()
            }
        )

    def with_router(self, action: Callable[[Router, float], T]) -> T:
        """Run ``action(router, now)`` for a component outside the node (the DNS forwarder's
        upstream choice), then send whatever it queued."""
        result = action(self.router, self.now())
        self._flush()
        return result

    # --- the pump ---------------------------------------------------------------------------
    def _flush(self) -> None:
        """Send everything the router, data plane and message engine queued; re-arm the timer."""
        router = self.router
        dataplane = self.dataplane
        engine = self.message_engine
        now = self.now()
        changes = router.take_route_changes()
        if changes:
            dataplane.route_changes(changes, now)
        for src, dst, payload in dataplane.take_messages():
            engine.handle(src, dst, payload, now)
        for dst, payload in engine.take_outgoing():
            dataplane.send_message(dst, payload, now)
        for neighbour, tlv in router.take_outgoing():
            neighbour.send(encode_control(tlv))
        for neighbour in router.take_dead_neighbours():
            log.info("neighbour declared dead (no IHU)", extra=fields(link=neighbour.connection_id))
            neighbour.close()
        self._send_data(now)
        if self.messages is not None:
            self.messages.collect()
        if self.nat is not None:
            self.nat.collect()
        self._arm_timer()
        dataplane.slow = False
        self._flushed_version = router.versioned.version

    def _flush_data(self, now: float) -> None:
        """After a batch of data packets. When each took one of the data plane's common paths
        and the router neither changed nor queued anything, only frames and TUN packets can be
        waiting: send those and skip the rest of ``_flush`` (docs/architecture.md §2)."""
        router = self.router
        if (
            self.dataplane.slow
            or router.outgoing
            or router.versioned.version != self._flushed_version
        ):
            self._flush()
        else:
            self._send_data(now)

    def _send_data(self, now: float) -> None:
        """The data plane's frames onto their links (one write per link) and its TUN packets."""
        dataplane = self.dataplane
        for neighbour, frames in dataplane.take_link_batches():
            neighbour.last_data = now
            neighbour.send_data_batch(frames)
        packets, delivered, hops = dataplane.take_tun_output()
        if (packets or delivered) and self.tun is not None:
            self.tun.write_batch(packets, delivered, hops)
            self._tun_written = True

    def _arm_timer(self) -> None:
        deadline = min(self.router.next_deadline(), self.message_engine.next_deadline())
        dp_deadline = self.dataplane.next_deadline()
        if dp_deadline is not None and dp_deadline < deadline:
            deadline = dp_deadline
        if deadline >= self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer_at = deadline
        self._timer = wake.call_at(self._loop, deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        now = self.now()
        self.router.tick(now)
        self.dataplane.tick(now)
        self.message_engine.tick(now)
        self._flush()

    @property
    def quic_endpoint(self) -> quic.QuicEndpoint | None:
        """The QUIC listener (None with QUIC disabled, or before ``start()``)."""
        return self._quic

    @property
    def quic_port(self) -> int | None:
        """The UDP port QUIC actually listens on (None with QUIC disabled)."""
        return None if self._quic is None else self._quic.port

    @property
    def tcp_port(self) -> int:
        """The TCP port actually listened on (differs from the config when that was 0)."""
        sockets = self._listeners[0].sockets if self._listeners else ()
        return int(sockets[0].getsockname()[1]) if sockets else self.config.tcp_listen_port

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # --- for embedders ------------------------------------------------------------------------
    @property
    def address(self) -> ipaddress.IPv6Address:
        """This node's overlay address (inside 400::/7, derived from its public key)."""
        return ipaddress.IPv6Address(self.identity.address)

    @property
    def public_key(self) -> str:
        """This node's public key in hex, as ``mycelium inspect`` prints it."""
        return self.identity.public_key.hex()

    @property
    def subnet(self) -> ipaddress.IPv6Network:
        """The /64 this node announces (its address's)."""
        return ipaddress.IPv6Network(str(self.identity.subnet))

    @property
    def uptime(self) -> float:
        """Seconds since the node was created."""
        return time.monotonic() - self.started_at

    @property
    def listen_endpoints(self) -> list[Endpoint]:
        """Where this node accepts peers, on its configured listen host (``::`` is any)."""
        host = self.config.listen_host
        proto = "tcp" if self.config.private is None else "tls"
        endpoints = [Endpoint(proto, host, self.tcp_port)] if self._listeners else []
        if self.quic_port is not None:
            endpoints.append(Endpoint("quic", host, self.quic_port))
        return endpoints

    async def send_message(
        self,
        dst: str | bytes | ipaddress.IPv6Address,
        payload: bytes,
        *,
        topic: bytes = b"",
        reply_timeout: float | None = None,
    ) -> ReceivedMessage | None:
        """Send ``payload`` to an overlay address or a public key (hex or raw) over the message
        bus; with ``reply_timeout``, wait that many seconds for the reply and return it."""
        _, reply = await self._bus().push(overlay_destination(dst), payload, topic, reply_timeout)
        return reply

    async def receive_message(
        self, timeout: float = 0.0, topic: bytes | None = None
    ) -> ReceivedMessage | None:
        """The oldest received message (with ``topic``, if given), waiting up to ``timeout``
        seconds for one; None when none came."""
        return await self._bus().pop(topic, timeout=timeout)

    def reply(self, message: ReceivedMessage, payload: bytes) -> None:
        """Answer a received message (its sender may be waiting in ``send_message``)."""
        self._bus().reply(message.id, message.src_ip, payload)

    def _bus(self) -> MessageService:
        if self.messages is None or self._stopped.is_set():
            raise RuntimeError("the node is not running: use `async with Node(config) as node`")
        return self.messages


def _stop_reading(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """``loop.remove_reader(fd)``. asyncio declares its result a bool, but uvloop's is None, and
    this module's compiled code checks a declared result: taken as an object, it is not."""
    remove: Callable[[int], object] = loop.remove_reader
    remove(fd)
