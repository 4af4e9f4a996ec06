"""QUIC links (docs/wire.md §6.3) on qh3's sans-I/O connection, one UDP socket for everything.

As the reference: the listen socket also carries every outbound connection; no ALPN; a fresh
self-signed certificate per start and no certificate checks; the dialling side opens the one
bidirectional stream (id 0) that carries control packets (and data packets too large for a
datagram); data packets travel as DATAGRAM frames.

This module is the socket: it demultiplexes datagrams to connections by connection ID. The
connections themselves (``quic_link.py``, with qh3) are loaded on the first one.

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
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ..qh3_native import AeadAes128Gcm, AuthenticationFailed
from ..socket_address import lookup_host
from .admission import InboundLimits, Release
from .base import Link, LinkHandler
from .endpoint import Endpoint
from .tcp import is_ipv4_peer

if TYPE_CHECKING:
    from qh3.quic.configuration import QuicConfiguration
    from qh3.quic.packet import QuicHeader

    from .quic_link import QuicLink

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 10.0
#: Inbound handshakes in progress at once, in all and from one source (links/admission.py).
MAX_PENDING_HANDSHAKES = 10
MAX_PENDING_PER_SOURCE = 3
#: From this many handshakes in progress on, a new Initial gets a Retry first.
RETRY_WHEN_PENDING = 1
#: Seconds a Retry token proves its address for.
TOKEN_LIFETIME = 30.0
_TOKEN_TIME = struct.Struct("!d")
SOCKET_BUFFER = 16 * 1024 * 1024
#: Messages qh3's batched read asks the kernel for per call (recvmmsg): a read that returns
#: fewer datagrams than that has drained the queue (a GRO message may hold several).
RECV_MESSAGES = 32
#: A GRO read: the kernel joins a flow's consecutive datagrams of one size (qh3's socket state
#: turns UDP_GRO on) into one buffer of at most 64 KiB, and says the segment size in a control
#: message next to the others that socket asks for (packet info, ECN).
GRO_BUFFER = 65535
GRO_CONTROL_SPACE = 256
_UDP_GRO = getattr(socket, "UDP_GRO", 104)
#: A batched read of this many datagrams is taken for bulk traffic: the next reads take trains.
BULK_BATCH = 8


#: Length of the connection IDs we issue (qh3's default); short headers carry only that.
HOST_CID_LENGTH = 8
_SHORT_CID_END = 1 + HOST_CID_LENGTH


def destination_cid(data: bytes) -> bytes:
    """The destination connection ID of a QUIC packet (b"" when it is too short to have one):
    long headers state its length, short headers carry one of ours."""
    if data and data[0] & 0x80:
        if len(data) < 6:
            return b""
        return data[6 : 6 + data[5]]
    return data[1:_SHORT_CID_END]


def gro_segment(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The segment size of a GRO read, from its control messages (0: a single datagram)."""
    for level, kind, value in ancillary:
        if level == socket.SOL_UDP and kind == _UDP_GRO and len(value) == 4:  # a C int
            return int.from_bytes(value, sys.byteorder)
    return 0


def short_headers_to(train: bytes, segment: int, cid: bytes) -> bool:
    """Whether every datagram of a GRO train is a short-header packet for connection ID
    ``cid`` (the kernel joins a flow's datagrams whichever connection they belong to).

    Checked a header byte at a time across all datagrams (a strided slice each): a loop over
    the datagrams took 17 us for a train of 45, this takes 5."""
    count = -(-len(train) // segment)
    if not train[::segment].isascii():  # a long header (first bit set) somewhere
        return False
    columns = enumerate(cid, 1)
    return all(train[index::segment] == bytes((byte,)) * count for index, byte in columns)


def socket_address(endpoint: Endpoint) -> tuple[str, int, int, int]:
    """The peer's address for our dual-stack IPv6 socket. Endpoints hold literal addresses, so
    nothing is resolved (uvloop's resolver would drop the scope of a link-local address)."""
    address, _, scope = endpoint.host.partition("%")
    if ":" not in address:
        return ("::ffff:" + address, endpoint.port, 0, 0)
    scope_id = 0
    if scope:
        scope_id = int(scope)  # endpoints carry numeric scopes only (socket_address.py)
    return (address, endpoint.port, 0, scope_id)


class RetryTokens:
    """Retry tokens (RFC 9000 §8.1.2): the address a Retry went to, the client's original
    destination connection ID, the connection ID the Retry gave it and the time, sealed with a
    key of this process (AES-GCM, the address as associated data). A token proves the address
    for ``TOKEN_LIFETIME`` seconds; checking one costs one AES-GCM open, never a public-key
    operation."""

    def __init__(self) -> None:
        self._key = os.urandom(16)

    def create(self, addr: tuple, original: bytes, retry_cid: bytes, now: float) -> bytes:
        nonce = os.urandom(12)
        sealed = _TOKEN_TIME.pack(now) + bytes((len(original),)) + original + retry_cid
        return nonce + AeadAes128Gcm(self._key, nonce).encrypt(0, sealed, _address_bytes(addr))

    def validate(self, addr: tuple, dcid: bytes, token: bytes, now: float) -> bytes:
        """The original destination connection ID; ValueError for a token that is not one of
        ours, for another address or connection ID, or too old."""
        try:
            cipher = AeadAes128Gcm(self._key, token[:12])
            plain = cipher.decrypt(0, token[12:], _address_bytes(addr))
        except (AuthenticationFailed, ValueError):
            raise ValueError("not a valid retry token") from None
        if len(plain) < _TOKEN_TIME.size + 1:
            raise ValueError("truncated retry token")
        issued = _TOKEN_TIME.unpack_from(plain)[0]
        size = plain[_TOKEN_TIME.size]
        original = plain[_TOKEN_TIME.size + 1 : _TOKEN_TIME.size + 1 + size]
        if plain[_TOKEN_TIME.size + 1 + size :] != dcid:
            raise ValueError("retry token for another connection ID")
        if not 0 <= now - issued <= TOKEN_LIFETIME:
            raise ValueError("retry token expired")
        return original


def _address_bytes(addr: tuple) -> bytes:
    return f"{addr[0]}|{addr[1]}".encode()


class QuicEndpoint:
    """The node's one UDP socket: demultiplexes datagrams to connections by connection ID.

    The socket is ours (non-blocking, watched by the loop): until the first QUIC connection it
    is read datagram by datagram, after it through qh3's batched socket I/O (``recvmmsg`` with
    UDP GRO, ``sendmsg`` with segmentation offload, in native code), which the connections load
    anyway. Sends that find the kernel buffer full are dropped, as a router would; QUIC's loss
    recovery resends what mattered."""

    def __init__(
        self,
        handler: LinkHandler,
        on_inbound: Callable[[Link], None],
        server_name: str,
        sock: socket.socket,
        limits: InboundLimits | None = None,
    ) -> None:
        self._server_name = server_name
        self._certificate: tuple[bytes, bytes] | None = None
        self._fingerprint: bytes | None = None
        #: Configurations by (dialling?, peer over IPv4?).
        self._configs: dict[tuple[bool, bool], QuicConfiguration] = {}
        self._handler = handler
        self._on_inbound = on_inbound
        self._links: dict[bytes, QuicLink] = {}
        #: Links given datagrams by the read in progress (``QuicLink.receive``).
        self._touched: list[QuicLink] = []
        self._sock: socket.socket | None = sock
        #: qh3's batched I/O on the same socket, once a connection loaded qh3.
        self._batched: Any = None
        #: Whether the last wake-up read bulk traffic: this one then reads GRO trains whole.
        self._trains = False
        #: Datagrams the kernel had no room for (sends that would have blocked).
        self.send_dropped = 0
        #: Inbound links held (handshakes included), and handshakes in progress.
        self.limits = limits if limits is not None else InboundLimits()
        self.pending = InboundLimits(MAX_PENDING_HANDSHAKES, MAX_PENDING_PER_SOURCE)
        self._retry = RetryTokens()
        #: Retry packets sent, and Initials dropped (bad token, or over a limit).
        self.retries_sent = 0
        self.initials_dropped = 0
        #: Receives ``(datagram, address)`` for every STUN datagram on the socket.
        self.stun_handler: Callable[[bytes, tuple], None] | None = None
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    # --- socket -------------------------------------------------------------------------------
    def _readable(self) -> None:
        """Read what is queued; then each connection takes its datagrams of this wake-up in one
        call, and what they carried goes to the node at once (no extra loop iteration)."""
        sock, batched = self._sock, self._batched
        if sock is None:
            return
        received = self.datagram_received
        try:
            if batched is not None:
                if self._trains:
                    self._trains = self._read_trains(sock)
                else:
                    self._trains = self._read_batches(batched)
            else:
                for _ in range(64):
                    try:
                        data, addr = sock.recvfrom(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as exc:
                        log.debug("QUIC socket error: %s", exc)
                        break
                    received(data, addr)
        finally:
            touched, self._touched = self._touched, []
            for link in touched:
                try:
                    link.receive_batch()
                except Exception:  # as the loop does for a callback: the other links go on
                    log.exception("QUIC link %s failed on its datagrams", link.connection_id)

    def _read_trains(self, sock: socket.socket) -> bool:
        """Bulk traffic arrives as GRO trains: a train read whole goes to its connection in one
        piece (``QuicLink.receive``), where qh3's batched read makes a bytes object, an address
        and a tuple per datagram (1.7 against 0.36 us a datagram, read alone). Returns whether
        trains still come: False once a read returns a lone datagram (the rest then waits for
        the next wake-up, read in batches)."""
        for _ in range(8):
            try:
                data, ancillary, _flags, addr = sock.recvmsg(GRO_BUFFER, GRO_CONTROL_SPACE)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("QUIC socket error: %s", exc)
                return True
            if len(addr) == 4 and "%" in addr[0]:  # as qh3 gives it: the scope as a number only
                addr = (addr[0].partition("%")[0], *addr[1:])
            segment = gro_segment(ancillary)
            if not 0 < segment < len(data):
                self._dispatch([(data, addr)])
                return False
            self._dispatch_train(data, segment, addr)
        return True

    def _read_batches(self, batched: Any) -> bool:
        """Reads in batches (recvmmsg) until the queue is drained; returns whether a batch
        looked like bulk traffic, which the next wake-up reads as trains."""
        bulk = False
        for _ in range(8):
            try:
                datagrams = batched.recv()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error reported on the socket
                log.debug("QUIC socket error: %s", exc)
                break
            self._dispatch(datagrams)
            bulk = bulk or len(datagrams) >= BULK_BATCH
            if len(datagrams) < RECV_MESSAGES:
                break  # the queue was drained: no read that finds it empty
        return bulk

    def _dispatch_train(self, train: bytes, segment: int, addr: tuple) -> None:
        """A GRO train whose datagrams all carry one connection's short header goes to that
        connection whole; any other (a handshake, two connections on one address pair) is
        split and dispatched datagram by datagram."""
        cid = train[1:_SHORT_CID_END]
        link = self._links.get(cid)
        if link is not None and short_headers_to(train, segment, cid):
            link.receive(train, addr, segment)
            return
        self._dispatch([(train[i : i + segment], addr) for i in range(0, len(train), segment)])

    def _dispatch(self, datagrams: list[tuple[bytes, tuple]]) -> None:
        """Give each datagram of a batched read to its connection. An established connection's
        packets have short headers, whose connection ID is looked up here, inline: the general
        path (``datagram_received``) costs two more Python calls a datagram."""
        links = self._links
        for data, addr in datagrams:
            if data and data[0] & 0xC0 == 0x40:  # short header (RFC 9000 §17.3)
                link = links.get(data[1:_SHORT_CID_END])
                if link is not None:
                    link.receive(data, addr)
                    continue
            self.datagram_received(data, addr)

    def sendto(self, data: bytes, addr: tuple) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.send_dropped += 1
        except OSError as exc:
            log.debug("QUIC send to %s failed: %s", addr, exc)

    def send_batch(self, datagrams: list[bytes], addr: tuple) -> None:
        """Send datagrams to one address; with qh3's socket I/O a burst of a connection's
        (mostly full-size) packets costs a few system calls instead of one each."""
        batched = self._batched
        if batched is None or len(datagrams) < 2:
            for data in datagrams:
                self.sendto(data, addr)
            return
        try:
            sent = batched.send(datagrams, addr)
        except (BlockingIOError, InterruptedError) as exc:
            sent = getattr(exc, "datagrams_sent", 0)
        except OSError as exc:
            log.debug("QUIC batched send to %s failed: %s", addr, exc)
            sent = getattr(exc, "datagrams_sent", 0)
        self.send_dropped += len(datagrams) - sent

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def _machinery(self, is_client: bool, addr: tuple) -> tuple[Any, QuicConfiguration]:
        """The connection module and the configuration for a connection to ``addr``, both made
        on first use (the certificate too)."""
        from . import quic_link

        if self._batched is None and self._sock is not None:
            self._batched = quic_link.batched_socket(self._sock)
        ipv4 = is_ipv4_peer(str(addr[0]))
        config = self._configs.get((is_client, ipv4))
        if config is None:
            certificate = None if is_client else self._own_certificate()
            config = quic_link._configuration(is_client, certificate, ipv4=ipv4)
            self._configs[(is_client, ipv4)] = config
        return quic_link, config

    def _own_certificate(self) -> tuple[bytes, bytes]:
        """Our certificate and key (PEM), made on first use: by a connection we accept, or by
        the fingerprint NAT traversal publishes."""
        if self._certificate is None:
            from . import quic_certificate

            self._certificate = quic_certificate.self_signed(self._server_name)
        return self._certificate

    @property
    def certificate_fingerprint(self) -> bytes:
        """SHA-256 of our certificate: what a node punching to us checks it against."""
        if self._fingerprint is None:
            from . import quic_certificate

            self._fingerprint = quic_certificate.fingerprint(self._own_certificate()[0])
        return self._fingerprint

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if data and data[0] < 0x40:  # no QUIC fixed bit: STUN, if anything (RFC 7983)
            if self.stun_handler is not None:
                self.stun_handler(data, addr)
            return
        link = self._links.get(destination_cid(data))
        if link is None:
            self._unknown(data, addr)
            return
        link.receive(data, addr)

    def _unknown(self, data: bytes, addr: tuple) -> None:
        """A datagram for no connection of ours: a new connection if it is a full Initial."""
        if len(data) < 1200 or not data[0] & 0x80:
            return
        from .qh3_core import Buffer, QuicPacketType, pull_quic_header

        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=HOST_CID_LENGTH)
        except ValueError:
            return
        if header.packet_type != QuicPacketType.INITIAL:
            return
        link = self._inbound(header, addr)
        if link is not None:
            link.receive(data, addr)

    def _inbound(self, header: QuicHeader, addr: tuple) -> QuicLink | None:
        """A connection for a new Initial, unless it must prove its address first or a limit
        is reached (then it is answered with a Retry, or dropped, and leaves no state)."""
        quic_link, server_config = self._machinery(False, addr)
        version, dcid, token = header.version, header.destination_cid, header.token
        if version is None or version not in server_config.supported_versions:
            self.initials_dropped += 1
            return None
        loop = asyncio.get_running_loop()
        original, retry_cid = dcid, None
        if token:
            try:
                original = self._retry.validate(addr, dcid, token, loop.time())
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
        connection = quic_link._new_connection(
            server_config,
            original_destination_connection_id=original,
            retry_source_connection_id=retry_cid,
        )
        link: QuicLink = quic_link.QuicLink(self, connection, addr, inbound=True)
        link._release = held
        self.register(dcid, link)
        self.register(connection.host_cid, link)
        link.stream_open.add_done_callback(partial(self._accepted, link, pending=pending))
        # As the reference: the handshake and the first stream bytes within 10 s, or the
        # connection (and the state an Initial made us keep) goes.
        loop.call_later(HANDSHAKE_TIMEOUT, self._admission_due, link)
        return link

    def _send_retry(self, version: int, scid: bytes, dcid: bytes, addr: tuple) -> None:
        from .qh3_core import encode_quic_retry

        retry_cid = os.urandom(8)
        token = self._retry.create(addr, dcid, retry_cid, asyncio.get_running_loop().time())
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
        quic_link, client_config = self._machinery(True, addr)
        connection = quic_link._new_connection(client_config)
        link = quic_link.QuicLink(self, connection, addr, inbound=False)
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
        sock, self._sock, self._batched = self._sock, None, None
        if sock is not None:
            asyncio.get_running_loop().remove_reader(sock.fileno())
            sock.close()


async def listen(
    host: str,
    port: int,
    handler: LinkHandler,
    on_inbound: Callable[[Link], None],
    server_name: str,
    limits: InboundLimits | None = None,
) -> QuicEndpoint:
    """Bind ``host:port`` (``::`` takes IPv4 too, mapped) and serve QUIC on it."""
    loop = asyncio.get_running_loop()
    passive = socket.AI_PASSIVE
    infos = await loop.getaddrinfo(lookup_host(host), port, type=socket.SOCK_DGRAM, flags=passive)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.bind(address)
        # The reference's 16 MiB buffers; bursts of datagrams overflow less.
        for option, forced in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER)  # *BUFFORCE
            except OSError:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        return QuicEndpoint(handler, on_inbound, server_name, sock, limits)
    except BaseException:
        sock.close()
        raise
