"""A QUIC link (docs/wire.md §6.3): one qh3 connection on the node's shared UDP socket.

qh3 is aioquic's API over a native (Rust) connection core: packet building, protection, loss
recovery and congestion control run in native code. Moving a stream of 1468-byte frames costs
4.5 us of CPU per QUIC packet for both ends together against aioquic's 58 us
(``bench/quic_core.py``), which is what lets a QUIC link carry full-size packets at speed.

Imported by ``quic.py`` on the first QUIC connection (dialled or accepted), not when the socket
opens: the QUIC stack costs a node with no QUIC peer memory for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from ..wire.errors import DecodeError, FramingError
from ..wire.stream import Packet, StreamDecoder, decode_packet
from .base import Link
from .endpoint import socket_text
from .qh3_core import (
    QuicConfiguration,
    QuicConnection,
    QuicConnectionError,
    QuicConnectionState,
    events,
)
from .tcp import is_ipv4_peer

if TYPE_CHECKING:
    from .admission import Release
    from .quic import QuicEndpoint

log = logging.getLogger(__name__)

COST_IPV6 = 7
COST_IPV4 = 12
IDLE_TIMEOUT = 60.0
#: UDP payload limit: Rust's advertised max_udp_payload_size, and what a 1500-byte path MTU
#: carries over IPv4 (1500 - 20 - 8).
MAX_UDP_PAYLOAD = 1472
#: Over IPv6 a 1500-byte path MTU carries 20 bytes less (1500 - 40 - 8): 1472-byte payloads were
#: sent as two IPv6 fragments each, and reassembled by the peer's kernel.
MAX_UDP_PAYLOAD_IPV6 = 1452
#: What a packet spends besides its DATAGRAM frame's payload (flags, 8-byte CID, packet number,
#: tag, frame header); larger data packets go on the stream instead (docs/wire.md §6.3.7).
DATAGRAM_OVERHEAD = 30
CONTROL_STREAM = 0
#: The dialler's first unidirectional stream: a punched link's credentials, nothing else.
AUTH_STREAM = 2
MAX_TOKEN = 64
#: Bytes queued on a connection's stream before the node is asked to pause.
HIGH_WATER = 4 * 1024 * 1024

#: Flow-control windows we grant the peer: the reference's stream receive window (10 MiB).
RECEIVE_WINDOW = 10 * 1024 * 1024


def batched_socket(sock: socket.socket) -> Any:
    """qh3's native batched I/O on ``sock`` (recvmmsg with UDP GRO, sendmsg with segmentation
    offload), or None where it is not available (the endpoint then reads and sends one by one)."""
    try:
        from qh3._hazmat import UdpSocketState
    except ImportError:
        return None
    try:
        return UdpSocketState(sock.fileno())
    except Exception as exc:  # e.g. a platform without it
        log.debug("no batched UDP I/O: %s", exc)
        return None


class _Connection(QuicConnection):
    """qh3's connection, with a lean way out for the packets it builds."""

    def outgoing(self, now: float) -> list[tuple[Any, list[bytes]]]:
        """What ``datagrams_to_send`` returns, as runs of datagrams to one address (a single
        run unless the path changed).

        ``datagrams_to_send`` wraps each packet the core builds in three Python calls: the core
        call's error wrapper and two packet-log hooks, one of which parses the packet's header
        even when no log is kept. That is about 0.7 us a packet, a fifth of building it. Our
        links keep no QUIC log, so then the core is polled directly."""
        if self._core is None:
            return []
        if self._quic_logger is not None:
            return [(to, [data]) for data, to in self.datagrams_to_send(now)]
        return self._call_core(self._poll_runs, now)

    def _poll_runs(self, now: float) -> list[tuple[Any, list[bytes]]]:
        assert self._core is not None
        poll = self._core.poll_transmit
        runs: list[tuple[Any, list[bytes]]] = []
        to: Any = None
        run: list[bytes] = []
        transmit = poll(now)
        while transmit is not None:
            if transmit[1] != to:
                to, run = transmit[1], []
                runs.append((to, run))
            run.append(transmit[0])
            transmit = poll(now)
        return runs

    def receive_train(self, train: bytes, segment: int, addr: Any, now: float) -> None:
        """``receive_gro_buffer`` without its packet-log hook per datagram (a Python call
        each), when no log is kept: the core splits the train itself."""
        if self._quic_logger is not None or self._core is None or not self._handshake_complete:
            self.receive_gro_buffer(train, segment, addr, now)
            return
        self._call_core(
            self._core.receive_gro_buffer, train, segment, self._normalize_address(addr), now
        )
        self._drain_core()


def _new_connection(configuration: QuicConfiguration, **kwargs: object) -> _Connection:
    return _Connection(configuration=configuration, **kwargs)  # type: ignore[arg-type]


def _configuration(
    is_client: bool, certificate: tuple[bytes, bytes] | None = None, *, ipv4: bool = False
) -> QuicConfiguration:
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=None,
        verify_mode=ssl.CERT_NONE,
        server_name="dummy.mycelium" if is_client else None,
        max_datagram_frame_size=65535,
        idle_timeout=IDLE_TIMEOUT,
        max_datagram_size=MAX_UDP_PAYLOAD if ipv4 else MAX_UDP_PAYLOAD_IPV6,
        max_data=RECEIVE_WINDOW,
        max_stream_data=RECEIVE_WINDOW,
    )
    if certificate is not None:
        # Apart: qh3 cuts a combined PEM one newline short and then misreads the certificate.
        config.load_cert_chain(*certificate)
    return config


class QuicLink(Link):
    protocol = "quic"

    def __init__(
        self, endpoint: QuicEndpoint, connection: _Connection, addr: tuple, inbound: bool
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
        #: Packets received by one read, delivered together by ``_deliver_inbox``.
        self._inbox: list[Packet] = []
        self._delivery_scheduled = False
        #: Datagrams read in this loop iteration, not yet given to the connection, and the
        #: address each came from.
        self._received: list[bytes] = []
        self._sources: list[tuple] = []
        #: The segment size of each GRO train among them (0 for a single datagram).
        self._segments: list[int] = []
        #: Largest data frame sent as a DATAGRAM (the rest go on the stream).
        self._max_datagram = connection._configuration.max_datagram_size - DATAGRAM_OVERHEAD
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._transmit_scheduled = False
        #: Connection IDs the endpoint routes to this link (forgotten with it, in O(own IDs)).
        self.cids: set[bytes] = set()
        #: Inbound: gives back the link's slot under the endpoint's limits when it goes.
        self._release: Release | None = None
        #: What the dialler sent on AUTH_STREAM (only a punched link's dialler sends anything).
        #: The loop, kept: asking asyncio for it costs a system call (getpid) each time.
        self._loop = loop = asyncio.get_running_loop()
        self.auth: asyncio.Future[bytes] = loop.create_future()
        self._auth_buffer = b""
        self._keepalive: asyncio.TimerHandle | None = None
        self.handshake: asyncio.Future[None] = loop.create_future()
        #: Inbound links are usable once the dialler opened stream 0 (its first bytes arrived).
        self.stream_open: asyncio.Future[None] = loop.create_future()

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
        try:
            self._conn.send_stream_data(CONTROL_STREAM, frame)
        except QuicConnectionError:  # closed by the peer, its event not handled yet
            self._process()
            self._deliver_later()
        self._transmit_soon()

    def send_data_batch(self, frames: list[bytes]) -> None:
        if self._congested:
            self.backlog.add_data(frames)
            return
        if self._closed:
            return
        conn = self._conn
        fits = self._max_datagram
        # Frames too large for one datagram (every full-size data frame) go on the stream, all
        # of a batch joined in one call: each call costs qh3 microseconds of Python, and on a
        # stream the joined bytes are the same frames in the same order (docs/wire.md §6.3.7).
        streamed: list[bytes] = []
        self.tx_bytes += sum(map(len, frames))
        try:
            for frame in frames:
                if len(frame) <= fits:
                    conn.send_datagram_frame(frame)
                else:
                    streamed.append(frame)
            if streamed:
                conn.send_stream_data(CONTROL_STREAM, b"".join(streamed))
        except QuicConnectionError:  # closed by the peer, its event not handled yet
            self._process()
            self._deliver_later()
        self._transmit_soon()

    def _transmit_soon(self) -> None:
        """One transmit per loop iteration, after every datagram read and frame queued in it:
        packets and ACKs go out in batches instead of one pass per datagram."""
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            self._loop.call_soon(self._transmit)

    def _transmit_after_io(self) -> None:
        """After a read: transmit once the loop has also handled the I/O that is ready next, so
        that an answer to what was delivered (from the TUN, or a neighbour's next datagrams)
        goes out in the same transmit as the ACK instead of behind an ACK-only packet. An answer
        the kernel gave while the node wrote to the TUN is already queued (the node reads it at
        once): its send scheduled the transmit, and this one adds nothing."""
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            self._loop.call_soon(self._loop.call_soon, self._transmit)

    def _transmit(self) -> None:
        self._transmit_scheduled = False
        if self._closed and self._conn._state is QuicConnectionState.TERMINATED:
            return
        loop = self._loop
        now = loop.time()
        for to, datagrams in self._conn.outgoing(now):
            self._endpoint.send_batch(datagrams, to)
        timer_at = self._conn.get_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if timer_at is not None:
            self._timer = loop.call_at(timer_at, self._on_timer)
        self._check_backpressure()

    def _queued_bytes(self) -> int:
        # Stream bytes not yet sent once (what congestion or flow control holds back).
        return int(self._conn.get_send_buffer_size(CONTROL_STREAM))

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
        self._conn.handle_timer(self._loop.time())
        self._process()
        self._deliver_inbox()
        self._transmit_soon()

    # --- receiving ----------------------------------------------------------------------------
    def receive(self, data: bytes, addr: tuple, segment: int = 0) -> None:
        """Take a datagram, or a GRO train of ``segment``-byte datagrams, during the endpoint's
        read: everything of that read goes to the connection once the read is over
        (``receive_batch``), and the events are handled once."""
        if not self._received:
            self._endpoint._touched.append(self)
        self._received.append(data)
        self._sources.append(addr)
        self._segments.append(segment)

    def receive_batch(self) -> None:
        received, sources, segments = self._received, self._sources, self._segments
        self._received, self._sources, self._segments = [], [], []
        if self._closed:
            return
        now = self._loop.time()
        addr = sources[0]
        conn = self._conn
        if not any(segments) and sources.count(addr) == len(sources):
            conn.receive_many_datagrams(received, addr, now)
        else:  # trains, or the peer's address changed within the batch: one by one
            for data, source, segment in zip(received, sources, segments, strict=True):
                if segment:
                    conn.receive_train(data, segment, source, now)
                else:
                    conn.receive_datagram(data, source, now)
        self._process()
        self._deliver_inbox()
        self._transmit_after_io()

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

    def _deliver_inbox(self) -> None:
        """Everything the datagrams of one read (or a timer) carried, as one batch: the node
        then routes, decrypts and writes to the TUN once per batch (GRO-joined), not once per
        QUIC packet."""
        self._delivery_scheduled = False
        packets, self._inbox = self._inbox, []
        self._deliver(packets)

    def _deliver_later(self) -> None:
        """From inside a send (the node is flushing): deliver on the next loop iteration."""
        if self._inbox and not self._delivery_scheduled:
            self._delivery_scheduled = True
            self._loop.call_soon(self._deliver_inbox)

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
        loop = self._loop

        def ping() -> None:
            if self._closed:
                return
            with contextlib.suppress(QuicConnectionError):
                self._conn.send_ping(0)
            self._transmit_soon()
            self._keepalive = loop.call_later(interval, ping)

        self._keepalive = loop.call_later(interval, ping)

    def peer_certificate_fingerprint(self) -> bytes | None:
        """SHA-256 of the DER certificate the accepting side presented (dialled links)."""
        certificate = self._conn.get_peercert()
        if certificate is None:
            return None
        return hashlib.sha256(certificate.public_bytes()).digest()

    def present_token(self, token: bytes) -> None:
        """Send ``token`` on AUTH_STREAM and close that stream."""
        with contextlib.suppress(QuicConnectionError):
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
