"""Plain TCP links (docs/wire.md §6.2): Mycelium framing straight on the stream, TCP_NODELAY on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

from ..wire.errors import FramingError
from ..wire.stream import StreamDecoder
from . import admission
from .admission import InboundLimits, Release
from .base import Link, LinkHandler
from .endpoint import Endpoint, socket_text

#: Static link cost of TCP (and TLS) over IPv6 and over IPv4 (docs/wire.md §6.7).
COST_IPV6 = 10
COST_IPV4 = 15
_SO_MARK = getattr(socket, "SO_MARK", 36)
#: Bytes the transport may hold above the kernel's socket buffer before the node is asked to stop
#: producing for this link (and resumes below a quarter of it). The kernel's buffer already keeps
#: a fast link busy; everything above it is queueing delay for every packet behind it, pings
#: included: 4 MiB here gave a p99 RTT under an iperf3 load of 128-162 ms, 512 KiB 50-82 ms at
#: the same throughput (bench/pair.py, 6 s runs interleaved).
WRITE_HIGH_WATER = 512 * 1024


def is_ipv4_peer(host: str) -> bool:
    return "." in host  # IPv4 and IPv4-mapped IPv6 (::ffff:a.b.c.d) both carry dots


def set_firewall_mark(sock: socket.socket, mark: int | None) -> None:
    if mark is not None:
        sock.setsockopt(socket.SOL_SOCKET, _SO_MARK, mark)


class StreamLink(Link, asyncio.Protocol):
    """A link over any asyncio byte-stream transport; ``protocol`` names what carries it."""

    protocol = "tcp"
    _label = "TCP"

    def __init__(self, handler: LinkHandler, *, inbound: bool, firewall_mark: int | None = None):
        super().__init__()
        self.handler = handler
        self.inbound = inbound
        self._mark = firewall_mark
        self._decoder = StreamDecoder()
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self.local_text = ""
        self.remote_text = ""
        self.remote_host = ""
        self.remote_port = 0
        #: Inbound links: called once the first packet decoded (listeners use it to register).
        self.on_open: Callable[[StreamLink], None] | None = None
        #: Inbound links: the listener's connection limits (a slot is taken on connect).
        self.limits: InboundLimits | None = None
        self._release: Release | None = None
        self._admission: asyncio.TimerHandle | None = None
        #: Whether the owner knows the link (outbound: from the start; inbound: once opened).
        self._announced = True

    # --- Link -------------------------------------------------------------------------------
    @property
    def remote(self) -> str:
        return f"{self.protocol}://{self.remote_text}"

    @property
    def connection_id(self) -> str:
        return f"{self._label} {self.local_text} <-> {self.remote_text}"

    def send(self, frame: bytes) -> None:
        if self._congested:
            self.backlog.add_control(frame)
            return
        transport = self._transport
        if transport is None or self._closed:
            return
        self.tx_bytes += len(frame)
        transport.write(frame)

    def send_data_batch(self, frames: list[bytes]) -> None:
        if self._congested:
            self.backlog.add_data(frames)
            return
        transport = self._transport
        if transport is None or self._closed:
            return
        self.tx_bytes += sum(map(len, frames))
        transport.writelines(frames)

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()

    # --- congestion (links/base.py) -----------------------------------------------------------
    def _queued_bytes(self) -> int:
        transport = self._transport
        return 0 if transport is None else int(transport.get_write_buffer_size())

    def _abort(self, reason: str) -> None:
        self._fail(reason)

    def _write_held(self, control: list[bytes], data: list[bytes]) -> None:
        self.send_data_batch(control + data)  # on a stream both are just frames, one write

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only duck-typed alike.
        stream = cast(asyncio.Transport, transport)
        self._transport = stream
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            set_firewall_mark(sock, self._mark)
        local = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        self.local_text = socket_text(str(local[0]), int(local[1])) if local else "?"
        if peer:
            self.remote_host, self.remote_port = str(peer[0]), int(peer[1])
            self.remote_text = socket_text(self.remote_host, self.remote_port)
        self.static_cost = COST_IPV4 if is_ipv4_peer(self.remote_host) else COST_IPV6
        stream.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_HIGH_WATER // 4)
        if self.on_open is not None:
            self._await_first_packet()

    def data_received(self, data: bytes) -> None:
        self.rx_bytes += len(data)
        try:
            packets = self._decoder.feed(data)
        except FramingError as exc:
            self._fail(f"framing error: {exc}")
            return
        self._deliver(packets)
        if self._admission is not None and packets:
            self._open()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._let_go()
        if self._closed:
            return
        self._closed = True
        if self._decoder.buffered and exc is None:
            reason = "connection closed inside a packet"
        else:
            reason = f"connection lost: {exc}" if exc else "connection closed"
        self._end_congestion()
        if self.handler is not None and self._announced:
            self.handler.link_closed(self, reason)

    def pause_writing(self) -> None:
        self._transport_paused()

    def resume_writing(self) -> None:
        self._transport_resumed()

    def _fail(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            self._transport.abort()
        self._let_go()
        self._end_congestion()
        if self.handler is not None and self._announced:
            self.handler.link_closed(self, reason)

    # --- inbound admission (links/admission.py) ---------------------------------------------
    def _await_first_packet(self) -> None:
        """Inbound: hold a slot under the listener's limits (or be refused at once), and open
        the link to the owner only once a packet decodes."""
        self._announced = False
        if self.limits is not None and self._release is None:
            self._release = self.limits.acquire(self.remote_host)
            if self._release is None:
                self._fail("over the inbound connection limits")
                return
        self._admission = asyncio.get_running_loop().call_later(
            admission.ADMISSION_TIMEOUT, self._fail, "no packet within the admission timeout"
        )

    def _open(self) -> None:
        assert self._admission is not None and self.on_open is not None
        self._admission.cancel()
        self._admission = None
        self._announced = True
        self.on_open(self)

    def _let_go(self) -> None:
        """The connection is over: its admission deadline and its slot go too."""
        if self._admission is not None:
            self._admission.cancel()
            self._admission = None
        if self._release is not None:
            self._release()
            self._release = None


class TcpLink(StreamLink):
    protocol = "tcp"
    _label = "TCP"


async def dial(
    endpoint: Endpoint,
    handler: LinkHandler,
    *,
    firewall_mark: int | None = None,
    **_ignored: object,
) -> TcpLink:
    """Connect to ``endpoint``; the link delivers nothing until ``start()``."""
    loop = asyncio.get_running_loop()
    host = endpoint.host

    def factory() -> TcpLink:
        return TcpLink(handler, inbound=False, firewall_mark=firewall_mark)

    if "%" not in host:
        _transport, link = await loop.create_connection(factory, host, endpoint.port)
        return link
    # A scoped link-local address (discovered peers): uvloop loses the scope on the way to
    # connect(), so connect the socket ourselves (a blocking connect on the local link, in a
    # thread) with the interface index in the address tuple.
    address, _, scope = host.partition("%")
    scope_id = int(scope)  # endpoints carry numeric scopes only (socket_address.py)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        set_firewall_mark(sock, firewall_mark)
        sock.settimeout(10)
        await asyncio.to_thread(sock.connect, (address, endpoint.port, 0, scope_id))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    _transport, link = await loop.create_connection(factory, sock=sock)
    return link


async def listen(
    host: str,
    port: int,
    handler: LinkHandler,
    on_link: Callable[[Link], None],
    *,
    firewall_mark: int | None = None,
    limits: InboundLimits | None = None,
    **_: object,
) -> asyncio.Server:
    """Accept TCP links on ``host:port`` (``::`` is dual-stack); ``on_link`` registers each once
    its first packet decoded. ``limits`` caps what is held (defaults: links/admission.py)."""
    loop = asyncio.get_running_loop()
    held = limits if limits is not None else InboundLimits()

    def factory() -> TcpLink:
        link = TcpLink(handler, inbound=True, firewall_mark=firewall_mark)
        link.on_open = on_link
        link.limits = held
        return link

    return await loop.create_server(factory, sock=listening_socket(host, port, firewall_mark))


def listening_socket(host: str, port: int, firewall_mark: int | None) -> socket.socket:
    """A non-blocking TCP listener; on ``::`` it takes IPv4 too (dual stack)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        set_firewall_mark(sock, firewall_mark)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
