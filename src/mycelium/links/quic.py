"""QUIC links (docs/wire.md §6.3) on aioquic's sans-I/O connection, one UDP socket for everything.

As the reference: the listen socket also carries every outbound connection; no ALPN; a fresh
self-signed certificate per start and no certificate checks; the dialling side opens the one
bidirectional stream (id 0) that carries control packets (and data packets too large for a
datagram); data packets travel as DATAGRAM frames.

Inbound handshakes are bounded: at most ``MAX_PENDING_HANDSHAKES`` at once (the reference's 10),
``MAX_PENDING_PER_SOURCE`` from one source, each within ``HANDSHAKE_TIMEOUT``. While one is in
progress, a new Initial must first prove its address with a Retry token (RFC 9000 §8.1.2): a
flood from spoofed sources gets one small Retry each (a tenth of its size) and creates no state
(docs/wire.md §6.3.1).

NAT traversal (docs/nat.md) shares the socket: datagrams without QUIC's fixed bit are STUN and go
to ``stun_handler``; a punched link is dialled with the certificate fingerprint the other node
sent over the overlay (``pin``) and presents that node's secret on the first unidirectional
stream (``token``), which the accepting side reads from ``QuicLink.auth``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
import os
import socket
import ssl
from collections.abc import Callable

from aioquic.buffer import Buffer
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.packet import QuicHeader, QuicPacketType, encode_quic_retry, pull_quic_header
from aioquic.quic.recovery import QuicPacketPacer
from aioquic.quic.retry import QuicRetryTokenHandler
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..wire.errors import DecodeError, FramingError
from ..wire.stream import StreamDecoder, decode_packet
from .admission import InboundLimits, Release
from .base import Link, LinkHandler
from .endpoint import Endpoint, socket_text
from .tcp import is_ipv4_peer

log = logging.getLogger(__name__)

COST_IPV6 = 7
COST_IPV4 = 12
IDLE_TIMEOUT = 60.0
#: UDP payload limit: Rust's advertised max_udp_payload_size.
MAX_UDP_PAYLOAD = 1472
#: DATAGRAM frame payload that always fits in one packet (flags, 8-byte CID, packet number, tag,
#: frame header): larger data packets go on the stream instead (docs/wire.md §6.3.7).
MAX_DATAGRAM_PAYLOAD = MAX_UDP_PAYLOAD - 30
HANDSHAKE_TIMEOUT = 10.0
#: Inbound handshakes in progress at once, in all and from one source (links/admission.py).
MAX_PENDING_HANDSHAKES = 10
MAX_PENDING_PER_SOURCE = 3
#: From this many handshakes in progress on, a new Initial gets a Retry first.
RETRY_WHEN_PENDING = 1
CONTROL_STREAM = 0
#: The dialler's first unidirectional stream: a punched link's credentials, nothing else.
AUTH_STREAM = 2
MAX_TOKEN = 64
#: Bytes queued on a connection's stream before the node is asked to pause.
HIGH_WATER = 4 * 1024 * 1024
SOCKET_BUFFER = 16 * 1024 * 1024


#: Pacing credit of at least one event-loop timer tick (uvloop's timers have 1 ms resolution).
PACING_TICK = 0.002


class CoarsePacer(QuicPacketPacer):
    """aioquic's pacer with a burst allowance of at least ``PACING_TICK``.

    On a fast path (1 ms RTT, a large window) aioquic's allowance shrinks below the time of one
    packet, so every packet waits for a timer, and a timer fires at most once a millisecond:
    about 1 MB/s. Here a burst may carry what the pacing rate allows in two milliseconds.
    """

    def update_rate(self, congestion_window: int, smoothed_rtt: float) -> None:
        super().update_rate(congestion_window, smoothed_rtt)
        self.bucket_max = max(self.bucket_max, PACING_TICK)


def _new_connection(configuration: QuicConfiguration, **kwargs: object) -> QuicConnection:
    connection = QuicConnection(configuration=configuration, **kwargs)  # type: ignore[arg-type]
    loss = getattr(connection, "_loss", None)
    if loss is not None and isinstance(getattr(loss, "_pacer", None), QuicPacketPacer):
        loss._pacer = CoarsePacer(max_datagram_size=configuration.max_datagram_size)
    return connection


def self_signed(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new P-256 certificate for this process (the reference makes one per start, too)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _configuration(is_client: bool, cert: object = None, key: object = None) -> QuicConfiguration:
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=None,
        verify_mode=ssl.CERT_NONE,
        server_name="dummy.mycelium" if is_client else None,
        max_datagram_frame_size=65535,
        idle_timeout=IDLE_TIMEOUT,
        max_datagram_size=MAX_UDP_PAYLOAD,
    )
    if not is_client:
        config.certificate = cert
        config.private_key = key
    return config


class QuicLink(Link):
    protocol = "quic"

    def __init__(
        self, endpoint: QuicEndpoint, connection: QuicConnection, addr: tuple, inbound: bool
    ) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._conn = connection
        self._addr = addr
        self.inbound = inbound
        host = str(addr[0]).split("%")[0]
        if len(addr) > 3 and addr[3]:  # the reference prints scopes as numbers, not names
            host = f"{host}%{int(addr[3])}"
        self.remote_host, self.remote_port = host, int(addr[1])
        self.static_cost = COST_IPV4 if is_ipv4_peer(self.remote_host) else COST_IPV6
        self._decoder = StreamDecoder()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._transmit_scheduled = False
        #: Connection IDs the endpoint routes to this link (forgotten with it, in O(own IDs)).
        self.cids: set[bytes] = set()
        #: Inbound: gives back the link's slot under the endpoint's limits when it goes.
        self._release: Release | None = None
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: Inbound links are usable once the dialler opened stream 0 (its first bytes arrived).
        self.stream_open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: What the dialler sent on AUTH_STREAM (only a punched link's dialler sends anything).
        self.auth: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._auth_buffer = b""
        self._keepalive: asyncio.TimerHandle | None = None

    @property
    def remote(self) -> str:
        return f"quic://{socket_text(self.remote_host, self.remote_port)}"

    @property
    def connection_id(self) -> str:
        return f"QUIC -> {socket_text(self.remote_host, self.remote_port)}"

    # --- sending ------------------------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        if self._congested:
            self.backlog.add_control(frame)
            return
        if self._closed:
            return
        self.tx_bytes += len(frame)
        self._conn.send_stream_data(CONTROL_STREAM, frame)
        self._transmit_soon()

    def send_data_batch(self, frames: list[bytes]) -> None:
        if self._congested:
            self.backlog.add_data(frames)
            return
        if self._closed:
            return
        conn = self._conn
        for frame in frames:
            self.tx_bytes += len(frame)
            if len(frame) <= MAX_DATAGRAM_PAYLOAD:
                conn.send_datagram_frame(frame)
            else:  # too large for one datagram: the reference accepts it on the stream
                conn.send_stream_data(CONTROL_STREAM, frame)
        self._transmit_soon()

    def _transmit_soon(self) -> None:
        """One transmit per loop iteration, after every datagram read and frame queued in it:
        packets and ACKs go out in batches instead of one aioquic pass per datagram."""
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            asyncio.get_running_loop().call_soon(self._transmit)

    def _transmit(self) -> None:
        self._transmit_scheduled = False
        if self._closed and self._conn._state is QuicConnectionState.TERMINATED:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        send = self._endpoint.sendto
        for data, addr in self._conn.datagrams_to_send(now):
            send(data, addr)
        timer_at = self._conn.get_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if timer_at is not None:
            self._timer = loop.call_at(timer_at, self._on_timer)
        self._check_backpressure()

    def _queued_bytes(self) -> int:
        # aioquic exposes no queue sizes: unacknowledged stream bytes and waiting datagrams.
        conn = self._conn
        stream = conn._streams.get(CONTROL_STREAM)
        queued = 0
        if stream is not None:
            queued = stream.sender._buffer_stop - stream.sender._buffer_start
        return queued + len(conn._datagrams_pending) * MAX_DATAGRAM_PAYLOAD

    def _check_backpressure(self) -> None:
        queued = self._queued_bytes()
        if not self._transport_full and queued > HIGH_WATER:
            self._transport_paused()
        elif self._transport_full and queued < HIGH_WATER // 4:
            self._transport_resumed()

    def _abort(self, reason: str) -> None:
        self.close(reason)

    def _on_timer(self) -> None:
        self._timer = None
        self._conn.handle_timer(asyncio.get_running_loop().time())
        self._process()

    # --- receiving ----------------------------------------------------------------------------
    def receive(self, data: bytes, addr: tuple) -> None:
        self._conn.receive_datagram(data, addr, asyncio.get_running_loop().time())
        self._process()

    def _process(self) -> None:
        conn = self._conn
        event = conn.next_event()
        while event is not None:
            kind = type(event)
            if kind is events.StreamDataReceived:
                if not self.stream_open.done():
                    self.stream_open.set_result(None)
                if event.stream_id == AUTH_STREAM:  # type: ignore[attr-defined]
                    self._auth_data(event)  # type: ignore[arg-type]
                    event = conn.next_event()
                    continue
                self.rx_bytes += len(event.data)  # type: ignore[attr-defined]
                try:
                    self._deliver(self._decoder.feed(event.data))  # type: ignore[attr-defined]
                except FramingError as exc:
                    self.close(f"framing error: {exc}")
                    return
            elif kind is events.DatagramFrameReceived:
                self.rx_bytes += len(event.data)  # type: ignore[attr-defined]
                with contextlib.suppress(DecodeError):
                    self._deliver([decode_packet(event.data)])  # type: ignore[attr-defined]
            elif kind is events.HandshakeCompleted:
                if not self.handshake.done():
                    self.handshake.set_result(None)
            elif kind is events.ConnectionIdIssued:
                self._endpoint.register(event.connection_id, self)  # type: ignore[attr-defined]
            elif kind is events.ConnectionIdRetired:
                self._endpoint.unregister(event.connection_id)  # type: ignore[attr-defined]
            elif kind is events.ConnectionTerminated:
                self._terminated(event.reason_phrase or "connection terminated")  # type: ignore[attr-defined]
                return
            event = conn.next_event()
        self._transmit_soon()

    def _auth_data(self, event: events.StreamDataReceived) -> None:
        if self.auth.done():
            return
        self._auth_buffer += event.data
        if len(self._auth_buffer) > MAX_TOKEN:
            self._auth_buffer = b""
            self.auth.set_result(b"")  # nobody's credentials are that long
        elif event.end_stream:
            self.auth.set_result(self._auth_buffer)

    # --- NAT traversal ------------------------------------------------------------------------
    def keep_alive(self, interval: float) -> None:
        """Send a PING every ``interval`` seconds, so that the NATs on the path keep it open."""
        loop = asyncio.get_running_loop()

        def ping() -> None:
            if self._closed:
                return
            self._conn.send_ping(0)
            self._transmit_soon()
            self._keepalive = loop.call_later(interval, ping)

        self._keepalive = loop.call_later(interval, ping)

    def peer_certificate_fingerprint(self) -> bytes | None:
        """SHA-256 of the DER certificate the accepting side presented (dialled links)."""
        certificate = getattr(self._conn.tls, "_peer_certificate", None)
        if certificate is None:
            return None
        return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()

    def present_token(self, token: bytes) -> None:
        """Send ``token`` on AUTH_STREAM and close that stream."""
        self._conn.send_stream_data(AUTH_STREAM, token, end_stream=True)
        self._transmit_soon()

    # --- closing ------------------------------------------------------------------------------
    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._conn.close(reason_phrase=reason)
        self._transmit()
        self._terminated(reason)

    def _terminated(self, reason: str) -> None:
        for timer in (self._timer, self._keepalive):
            if timer is not None:
                timer.cancel()
        self._timer = self._keepalive = None
        first = not self._closed
        self._closed = True
        self._endpoint.forget(self)
        if self._release is not None:
            self._release()
            self._release = None
        for future in (self.handshake, self.stream_open, self.auth):
            if not future.done():
                future.set_exception(ConnectionError(reason))
                future.exception()  # retrieved: nobody may be waiting
        self._end_congestion()
        if first and self.handler is not None and self._started:
            self.handler.link_closed(self, reason)


def socket_address(endpoint: Endpoint) -> tuple[str, int, int, int]:
    """The peer's address for our dual-stack IPv6 socket. Endpoints hold literal addresses, so
    nothing is resolved (uvloop's resolver would drop the scope of a link-local address)."""
    address, _, scope = endpoint.host.partition("%")
    if ":" not in address:
        return ("::ffff:" + address, endpoint.port, 0, 0)
    scope_id = 0
    if scope:
        scope_id = int(scope) if scope.isdigit() else socket.if_nametoindex(scope)
    return (address, endpoint.port, 0, scope_id)


class QuicEndpoint(asyncio.DatagramProtocol):
    """The node's one UDP socket: demultiplexes datagrams to connections by connection ID."""

    def __init__(
        self,
        handler: LinkHandler,
        on_inbound: Callable[[Link], None],
        server_name: str,
        limits: InboundLimits | None = None,
    ) -> None:
        cert, key = self_signed(server_name)
        #: SHA-256 of our certificate: what a node punching to us checks it against.
        self.certificate_fingerprint = hashlib.sha256(
            cert.public_bytes(serialization.Encoding.DER)
        ).digest()
        #: Receives ``(datagram, address)`` for every STUN datagram on the socket.
        self.stun_handler: Callable[[bytes, tuple], None] | None = None
        self._server_config = _configuration(False, cert, key)
        self._client_config = _configuration(True)
        self._handler = handler
        self._on_inbound = on_inbound
        self._links: dict[bytes, QuicLink] = {}
        self._transport: asyncio.DatagramTransport | None = None
        #: Inbound links held (handshakes included), and handshakes in progress.
        self.limits = limits if limits is not None else InboundLimits()
        self.pending = InboundLimits(MAX_PENDING_HANDSHAKES, MAX_PENDING_PER_SOURCE)
        self._retry = QuicRetryTokenHandler()
        #: Retry packets sent, and Initials dropped (bad token, or over a limit).
        self.retries_sent = 0
        self.initials_dropped = 0

    # --- socket -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # the reference's 16 MiB buffers; bursts of datagrams overflow less
            for option, forced in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER)  # *BUFFORCE
                except OSError:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)

    def sendto(self, data: bytes, addr: tuple) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if data and data[0] < 0x40:  # no QUIC fixed bit: STUN, if anything (RFC 7983)
            if self.stun_handler is not None:
                self.stun_handler(data, addr)
            return
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=8)
        except ValueError:
            return
        link = self._links.get(header.destination_cid)
        if link is None:
            if header.packet_type != QuicPacketType.INITIAL or len(data) < 1200:
                return
            link = self._inbound(header, addr)
            if link is None:
                return
        link.receive(data, addr)

    def _inbound(self, header: QuicHeader, addr: tuple) -> QuicLink | None:
        """A connection for a new Initial, unless it must prove its address first or a limit
        is reached (then it is answered with a Retry, or dropped, and leaves no state)."""
        version, dcid, token = header.version, header.destination_cid, header.token
        if version is None or version not in self._server_config.supported_versions:
            self.initials_dropped += 1
            return None
        loop = asyncio.get_running_loop()
        original, retry_cid = dcid, None
        if token:
            try:
                original = self._retry.validate_token(
                    address=addr, destination_cid=dcid, token=token, now=loop.time()
                )
            except ValueError:
                self.initials_dropped += 1
                return None
            retry_cid = dcid
        elif self.pending.held >= RETRY_WHEN_PENDING:
            self._send_retry(version, header.source_cid, dcid, addr)
            return None
        host = str(addr[0])
        pending = self.pending.acquire(host)
        if pending is None:
            self.initials_dropped += 1
            return None
        held = self.limits.acquire(host)
        if held is None:
            pending()
            self.initials_dropped += 1
            return None
        connection = _new_connection(
            self._server_config,
            original_destination_connection_id=original,
            retry_source_connection_id=retry_cid,
        )
        link = QuicLink(self, connection, addr, inbound=True)
        link._release = held
        self.register(dcid, link)
        self.register(connection.host_cid, link)
        link.stream_open.add_done_callback(
            lambda f, link=link, pending=pending: self._accepted(link, f, pending)
        )
        # As the reference: the handshake and the first stream bytes within 10 s, or the
        # connection (and the state an Initial made us keep) goes.
        loop.call_later(HANDSHAKE_TIMEOUT, self._admission_due, link)
        return link

    def _send_retry(self, version: int, scid: bytes, dcid: bytes, addr: tuple) -> None:
        retry_cid = os.urandom(8)
        token = self._retry.create_token(
            address=addr,
            original_destination_connection_id=dcid,
            retry_source_connection_id=retry_cid,
            now=asyncio.get_running_loop().time(),
        )
        self.retries_sent += 1
        self.sendto(encode_quic_retry(version, retry_cid, scid, dcid, token), addr)

    @staticmethod
    def _admission_due(link: QuicLink) -> None:
        if not link.stream_open.done():
            link.close("no control stream within the handshake timeout")

    def _accepted(self, link: QuicLink, done: asyncio.Future[None], pending: Release) -> None:
        pending()  # the handshake is over, one way or the other
        if done.cancelled() or done.exception() is not None:
            return
        link.handler = self._handler
        self._on_inbound(link)

    def error_received(self, exc: Exception) -> None:
        log.debug("QUIC socket error: %s", exc)

    # --- connections --------------------------------------------------------------------------
    def register(self, cid: bytes, link: QuicLink) -> None:
        self._links[cid] = link
        link.cids.add(cid)

    def unregister(self, cid: bytes) -> None:
        link = self._links.pop(cid, None)
        if link is not None:
            link.cids.discard(cid)

    def forget(self, link: QuicLink) -> None:
        """Drop the link's connection IDs (its own few, never a scan of every connection)."""
        for cid in link.cids:
            if self._links.get(cid) is link:
                del self._links[cid]
        link.cids.clear()

    async def dial(
        self,
        endpoint: Endpoint,
        handler: LinkHandler,
        *,
        pin: bytes | None = None,
        token: bytes | None = None,
    ) -> QuicLink:
        """Connect from the shared socket; the link is returned once the handshake is done.

        ``pin``: the server's certificate must have this SHA-256 fingerprint. ``token``: sent on
        AUTH_STREAM once the server is known to be the right one."""
        loop = asyncio.get_running_loop()
        addr = socket_address(endpoint)
        connection = _new_connection(self._client_config)
        link = QuicLink(self, connection, addr, inbound=False)
        self.register(connection.host_cid, link)
        connection.connect(addr, loop.time())
        link._transmit()
        try:
            await asyncio.wait_for(asyncio.shield(link.handshake), HANDSHAKE_TIMEOUT)
        except (TimeoutError, ConnectionError) as exc:
            link.close("handshake failed")
            raise ConnectionError(f"QUIC handshake with {endpoint} failed: {exc}") from None
        if pin is not None and link.peer_certificate_fingerprint() != pin:
            link.close("unexpected certificate")
            raise ConnectionError(f"{endpoint} presented another certificate than expected")
        if token is not None:
            link.present_token(token)
        link.handler = handler
        return link

    def close(self) -> None:
        for link in set(self._links.values()):
            link.close("node stopping")
        if self._transport is not None:
            self._transport.close()


async def listen(
    host: str,
    port: int,
    handler: LinkHandler,
    on_inbound: Callable[[Link], None],
    server_name: str,
    limits: InboundLimits | None = None,
) -> QuicEndpoint:
    loop = asyncio.get_running_loop()
    _transport, endpoint = await loop.create_datagram_endpoint(
        lambda: QuicEndpoint(handler, on_inbound, server_name, limits), local_addr=(host, port)
    )
    return endpoint
