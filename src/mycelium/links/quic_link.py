"""A QUIC link (docs/wire.md §6.3): one aioquic connection on the node's shared UDP socket.

Imported by ``quic.py`` on the first QUIC connection (dialled or accepted), not when the socket
opens: aioquic, its TLS stack and the certificate machinery cost a node that has no QUIC peer
about 6 MB of memory for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from typing import TYPE_CHECKING

from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.congestion.base import register_congestion_control
from aioquic.quic.congestion.cubic import CubicCongestionControl
from aioquic.quic.connection import QuicConnection, QuicConnectionState
from aioquic.quic.recovery import QuicPacketPacer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..wire.errors import DecodeError, FramingError
from ..wire.stream import Packet, StreamDecoder, decode_packet
from .base import Link
from .endpoint import socket_text
from .quic import (
    CONTROL_STREAM,
    COST_IPV4,
    COST_IPV6,
    DATAGRAM_OVERHEAD,
    HIGH_WATER,
    IDLE_TIMEOUT,
    MAX_DATAGRAM_PAYLOAD,
    MAX_UDP_PAYLOAD,
    MAX_UDP_PAYLOAD_IPV6,
)
from .tcp import is_ipv4_peer

if TYPE_CHECKING:
    from .quic import QuicEndpoint


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


#: The reference's initial congestion window (quinn's CUBIC with ``initial_window(4 MiB)``).
INITIAL_WINDOW = 4 * 1024 * 1024
#: Flow-control windows we grant the peer: the reference's stream receive window (10 MiB).
RECEIVE_WINDOW = 10 * 1024 * 1024


class WideCubic(CubicCongestionControl):
    """aioquic's CUBIC, starting from the reference's 4 MiB window instead of 10 packets.

    From 10 packets, slow start lasted a few round trips only: on a fast path the RTT is mostly
    the nodes' own processing, it rises as soon as the window grows, and HyStart then leaves
    slow start; congestion avoidance adds one packet per window per round trip, so the window
    stayed at a few dozen packets and the pacer held a link to 64 Mbit/s."""

    def __init__(self, *, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size=max_datagram_size)
        self.congestion_window = self._W_max = INITIAL_WINDOW


register_congestion_control("mycelium-cubic", WideCubic)


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


def _configuration(
    is_client: bool, cert: object = None, key: object = None, *, ipv4: bool = False
) -> QuicConfiguration:
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=None,
        verify_mode=ssl.CERT_NONE,
        server_name="dummy.mycelium" if is_client else None,
        max_datagram_frame_size=65535,
        idle_timeout=IDLE_TIMEOUT,
        max_datagram_size=MAX_UDP_PAYLOAD if ipv4 else MAX_UDP_PAYLOAD_IPV6,
        congestion_control_algorithm="mycelium-cubic",
        max_data=RECEIVE_WINDOW,
        max_stream_data=RECEIVE_WINDOW,
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
        #: Packets received in this loop iteration, delivered together by ``_deliver_inbox``.
        self._inbox: list[Packet] = []
        self._delivery_scheduled = False
        #: Largest data frame sent as a DATAGRAM (the rest go on the stream).
        self._max_datagram = connection._configuration.max_datagram_size - DATAGRAM_OVERHEAD
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._paused = False
        self._transmit_scheduled = False
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: Inbound links are usable once the dialler opened stream 0 (its first bytes arrived).
        self.stream_open: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def remote(self) -> str:
        return f"quic://{socket_text(self.remote_host, self.remote_port)}"

    @property
    def connection_id(self) -> str:
        return f"QUIC -> {socket_text(self.remote_host, self.remote_port)}"

    # --- sending ------------------------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        if self._closed:
            return
        self.tx_bytes += len(frame)
        self._conn.send_stream_data(CONTROL_STREAM, frame)
        self._transmit_soon()

    def send_data(self, frame: bytes) -> None:
        self.send_data_batch([frame])

    def send_data_batch(self, frames: list[bytes]) -> None:
        if self._closed:
            return
        conn = self._conn
        fits = self._max_datagram
        for frame in frames:
            self.tx_bytes += len(frame)
            if len(frame) <= fits:
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

    def _check_backpressure(self) -> None:
        # aioquic exposes no queue sizes: unacknowledged stream bytes and waiting datagrams.
        conn = self._conn
        stream = conn._streams.get(CONTROL_STREAM)
        queued = 0
        if stream is not None:
            queued = stream.sender._buffer_stop - stream.sender._buffer_start
        queued += len(conn._datagrams_pending) * MAX_DATAGRAM_PAYLOAD
        handler = self.handler
        if handler is None:
            return
        if not self._paused and queued > HIGH_WATER:
            self._paused = True
            handler.link_pause_writing(self)
        elif self._paused and queued < HIGH_WATER // 4:
            self._paused = False
            handler.link_resume_writing(self)

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
                self.rx_bytes += len(event.data)  # type: ignore[attr-defined]
                try:
                    self._inbox += self._decoder.feed(event.data)  # type: ignore[attr-defined]
                except FramingError as exc:
                    self.close(f"framing error: {exc}")
                    return
            elif kind is events.DatagramFrameReceived:
                self.rx_bytes += len(event.data)  # type: ignore[attr-defined]
                with contextlib.suppress(DecodeError):
                    self._inbox.append(decode_packet(event.data))  # type: ignore[attr-defined]
            elif kind is events.HandshakeCompleted:
                if not self.handshake.done():
                    self.handshake.set_result(None)
            elif kind is events.ConnectionIdIssued:
                self._endpoint.register(event.connection_id, self)  # type: ignore[attr-defined]
            elif kind is events.ConnectionIdRetired:
                self._endpoint.unregister(event.connection_id)  # type: ignore[attr-defined]
            elif kind is events.ConnectionTerminated:
                self._deliver_inbox()
                self._terminated(event.reason_phrase or "connection terminated")  # type: ignore[attr-defined]
                return
            event = conn.next_event()
        if self._inbox and not self._delivery_scheduled:
            self._delivery_scheduled = True
            asyncio.get_running_loop().call_soon(self._deliver_inbox)
        self._transmit_soon()

    def _deliver_inbox(self) -> None:
        """Everything the datagrams of this loop iteration carried, as one batch: the node
        then routes, decrypts and writes to the TUN once per batch (GRO-joined), not once per
        QUIC packet."""
        self._delivery_scheduled = False
        packets, self._inbox = self._inbox, []
        self._deliver(packets)

    # --- closing ------------------------------------------------------------------------------
    def close(self, reason: str = "closed") -> None:
        if self._closed:
            return
        self._conn.close(reason_phrase=reason)
        self._transmit()
        self._terminated(reason)

    def _terminated(self, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        first = not self._closed
        self._closed = True
        self._endpoint.forget(self)
        for future in (self.handshake, self.stream_open):
            if not future.done():
                future.set_exception(ConnectionError(reason))
                future.exception()  # retrieved: nobody may be waiting
        if first and self.handler is not None and self._started:
            self.handler.link_closed(self, reason)
