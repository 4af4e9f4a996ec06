"""TLS 1.3 external-PSK links for private networks (docs/wire.md §6.4).

tlslite-ng performs the handshake (PSK identity = network name, psk_dhe_ke, X25519) through its
generator API on a non-blocking socket, driven by the event loop: a peer that stalls holds a
descriptor and a deadline, never a thread, so idle sockets cannot starve real members' handshakes
(a wrong key fails at the ClientHello's binder, within milliseconds). Then the traffic keys move
to our own TLS 1.3 record layer, where qh3's AEAD does the work (a pure-Python record layer
would manage about 1 MB/s). Its ciphers are made for QUIC, whose nonce is TLS 1.3's: the
connection's IV with the record's sequence number mixed in, so one cipher serves a direction.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable, Iterator

from tlslite import HandshakeSettings, TLSConnection
from tlslite.errors import TLSError

from ..qh3_native import AeadAes128Gcm, AeadChaCha20Poly1305, AuthenticationFailed
from .admission import InboundLimits, Release
from .base import Link, LinkHandler
from .endpoint import Endpoint
from .tcp import StreamLink, listening_socket, set_firewall_mark

log = logging.getLogger(__name__)

#: The whole handshake, either side.
HANDSHAKE_TIMEOUT = 10.0
#: An accepted connection's first byte (a member's ClientHello follows its connect at once).
FIRST_BYTE_TIMEOUT = 5.0
MAX_PLAINTEXT = 16384
_APPLICATION_DATA = 23
_HANDSHAKE = 22
_ALERT = 21
_CHANGE_CIPHER_SPEC = 20
_HEADER = struct.Struct("!BHH")
_NEW_SESSION_TICKET = 4


class TlsError(ConnectionError):
    """A failed handshake (wrong key or network name) or a broken record."""


def settings(network_name: bytes, key: bytes) -> HandshakeSettings:
    s = HandshakeSettings()
    s.minVersion = s.maxVersion = (3, 4)
    s.pskConfigs = [(network_name, key, "sha256")]
    s.psk_modes = ["psk_dhe_ke"]
    s.keyShares = ["x25519"]
    s.cipherNames = ["chacha20-poly1305", "aes128gcm"]
    return s


#: The ciphers ``settings`` offers (tlslite's names) and their key sizes. qh3 panics, past any
#: ``except Exception``, on a key of the wrong size, so the sizes are checked first.
_CIPHERS: dict[str, tuple[type[AeadAes128Gcm] | type[AeadChaCha20Poly1305], int]] = {
    "aes128gcm": (AeadAes128Gcm, 16),
    "chacha20-poly1305": (AeadChaCha20Poly1305, 32),
}
#: The last sequence number a direction may use (RFC 8446 §5.3: it must not wrap).
_MAX_SEQ = 2**64 - 1


class RecordProtection:
    """TLS 1.3 application-data records (RFC 8446 §5.2) for one established connection."""

    def __init__(
        self, cipher: str, write: tuple[bytes, bytes, int], read: tuple[bytes, bytes, int]
    ) -> None:
        aead, key_size = _CIPHERS.get(cipher, (None, 0))
        if aead is None or len(write[0]) != key_size or len(read[0]) != key_size:
            raise TlsError(f"TLS cipher {cipher} with a {len(write[0])}-byte key")
        self._write, self._write_seq = aead(write[0], write[1]), write[2]
        self._read, self._read_seq = aead(read[0], read[1]), read[2]
        self._buffer = bytearray()

    def seal(self, plaintext: bytes) -> bytes:
        out = []
        for i in range(0, len(plaintext), MAX_PLAINTEXT):
            inner = plaintext[i : i + MAX_PLAINTEXT] + b"\x17"
            header = _HEADER.pack(_APPLICATION_DATA, 0x0303, len(inner) + 16)
            out.append(header)
            if self._write_seq > _MAX_SEQ:
                raise TlsError("TLS sequence numbers exhausted")
            out.append(self._write.encrypt(self._write_seq, inner, header))
            self._write_seq += 1
        return b"".join(out)

    def feed(self, data: bytes) -> None:
        """Raw bytes received before this layer took over; decrypted by the next ``open``."""
        self._buffer += data

    @property
    def pending(self) -> bool:
        return bool(self._buffer)

    def open(self, data: bytes) -> bytes:
        """Application data carried by every complete record in ``data`` (plus earlier bytes)."""
        buf = self._buffer
        buf += data
        plain = []
        pos = 0
        while len(buf) - pos >= 5:
            kind, _version, length = _HEADER.unpack_from(buf, pos)
            if length > MAX_PLAINTEXT + 256:
                raise TlsError(f"TLS record of {length} bytes")
            end = pos + 5 + length
            if end > len(buf):
                break
            header, body = bytes(buf[pos : pos + 5]), bytes(buf[pos + 5 : end])
            pos = end
            if kind == _CHANGE_CIPHER_SPEC:
                continue  # middlebox compatibility, meaningless
            if kind != _APPLICATION_DATA:
                raise TlsError(f"unexpected TLS record type {kind}")
            if self._read_seq > _MAX_SEQ:
                raise TlsError("TLS sequence numbers exhausted")
            try:
                inner = self._read.decrypt(self._read_seq, body, header)
            except AuthenticationFailed:
                raise TlsError("TLS record failed authentication") from None
            self._read_seq += 1
            inner = inner.rstrip(b"\x00")
            if not inner:
                raise TlsError("TLS record without a content type")
            content, kind = inner[:-1], inner[-1]
            if kind == _APPLICATION_DATA:
                plain.append(content)
            elif kind == _HANDSHAKE:
                # Session tickets are accepted and ignored (no resumption); a KeyUpdate would
                # need new keys, which neither the reference nor we ever ask for.
                if content[:1] != bytes((_NEW_SESSION_TICKET,)):
                    raise TlsError(f"unsupported post-handshake message {content[:1].hex()}")
            elif kind == _ALERT:
                raise TlsError(f"TLS alert {content.hex()}")
            else:
                raise TlsError(f"unexpected inner content type {kind}")
        del buf[:pos]
        return b"".join(plain)


def _protection(connection: TLSConnection) -> RecordProtection:
    layer = connection._recordLayer  # tlslite keeps the cipher states here
    write, read = layer._writeState, layer._readState
    records = RecordProtection(
        write.encContext.name,
        (bytes(write.encContext.key), bytes(write.fixedNonce), write.seqnum),
        (bytes(read.encContext.key), bytes(read.fixedNonce), read.seqnum),
    )
    # tlslite reads the socket in 4 KiB gulps: records the peer sent right after its Finished
    # may already sit in its buffer. They are ours to decrypt.
    records.feed(bytes(getattr(connection.sock, "_read_buffer", b"")))
    return records


async def handshake(
    sock: socket.socket, server: bool, network_name: bytes, key: bytes
) -> RecordProtection:
    """The handshake on a connected socket, on the event loop, within ``HANDSHAKE_TIMEOUT``
    (and, accepting, a first byte within ``FIRST_BYTE_TIMEOUT``). The socket is left
    non-blocking, with no reader or writer registered."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    connection = TLSConnection(sock)
    config = settings(network_name, key)
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            if server:
                try:
                    async with asyncio.timeout(FIRST_BYTE_TIMEOUT):
                        await _ready(loop, sock, False)
                except TimeoutError:
                    raise TlsError("no ClientHello within the first-byte timeout") from None
                steps: Iterator[object] = connection.handshakeServerAsync(settings=config)
            else:
                steps = connection.handshakeClientCert(settings=config, async_=True)
            for want in steps:  # tlslite yields 0 to read, 1 to write
                await _ready(loop, sock, want == 1)
    except TimeoutError:
        raise TlsError("TLS handshake took too long") from None
    except (TLSError, OSError) as exc:
        raise TlsError(f"TLS handshake failed: {exc!r}") from None
    return _protection(connection)


async def _ready(loop: asyncio.AbstractEventLoop, sock: socket.socket, write: bool) -> None:
    """Until ``sock`` is readable (or writable)."""
    ready = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class TlsLink(StreamLink):
    protocol = "tls"
    _label = "TLS"

    def __init__(
        self,
        handler: LinkHandler,
        records: RecordProtection,
        *,
        inbound: bool,
        firewall_mark: int | None = None,
    ) -> None:
        super().__init__(handler, inbound=inbound, firewall_mark=firewall_mark)
        self._records = records

    def send(self, frame: bytes) -> None:
        if self._congested:
            self.backlog.add_control(frame)
            return
        self._seal([frame])

    def send_data_batch(self, frames: list[bytes]) -> None:
        if self._congested:
            self.backlog.add_data(frames)
            return
        self._seal(frames)

    def _seal(self, frames: list[bytes]) -> None:
        """One write of TLS records carrying ``frames``."""
        transport = self._transport
        if transport is None or self._closed:
            return
        plaintext = b"".join(frames)
        self.tx_bytes += len(plaintext)
        transport.write(self._records.seal(plaintext))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._records.pending:
            self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        try:
            plaintext = self._records.open(data)
        except TlsError as exc:
            self._fail(str(exc))
            return
        if plaintext:
            super().data_received(plaintext)


async def dial(
    endpoint: Endpoint,
    handler: LinkHandler,
    *,
    network_name: bytes,
    key: bytes,
    firewall_mark: int | None = None,
) -> TlsLink:
    loop = asyncio.get_running_loop()
    family, addr = _socket_address(endpoint)
    sock = socket.socket(family, socket.SOCK_STREAM)
    set_firewall_mark(sock, firewall_mark)
    try:
        # Connect in a thread: uvloop's sock_connect re-resolves the address and loses the
        # scope of a link-local peer (discovered peers are dialled that way).
        sock.settimeout(HANDSHAKE_TIMEOUT)
        await asyncio.to_thread(sock.connect, addr)
        records = await handshake(sock, False, network_name, key)
    except BaseException:
        sock.close()
        raise
    _transport, link = await loop.create_connection(
        lambda: TlsLink(handler, records, inbound=False, firewall_mark=firewall_mark), sock=sock
    )
    return link


def _socket_address(endpoint: Endpoint) -> tuple[int, tuple]:
    host = endpoint.host
    if ":" not in host:
        return socket.AF_INET, (host, endpoint.port)
    address, _, scope = host.partition("%")
    scope_id = 0
    if scope:
        scope_id = int(scope)  # endpoints carry numeric scopes only (socket_address.py)
    return socket.AF_INET6, (address, endpoint.port, 0, scope_id)


class TlsListener:
    """Accepts TCP connections and admits those that complete the PSK handshake; a pending
    handshake holds a slot under the listener's limits like an open link does."""

    def __init__(
        self,
        sock: socket.socket,
        handler: LinkHandler,
        on_link: Callable[[Link], None],
        network_name: bytes,
        key: bytes,
        firewall_mark: int | None,
        limits: InboundLimits | None = None,
    ) -> None:
        self._sock = sock
        self._handler = handler
        self._on_link = on_link
        self._name = network_name
        self._key = key
        self._mark = firewall_mark
        self.limits = limits if limits is not None else InboundLimits()
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def sockets(self) -> list[socket.socket]:
        """Like ``asyncio.Server.sockets``, so the node reads its port the same way."""
        return [self._sock]

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, addr = await loop.sock_accept(self._sock)
            release = self.limits.acquire(str(addr[0]))
            if release is None:
                conn.close()
                continue
            task = loop.create_task(self._admit(conn, release))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _admit(self, conn: socket.socket, release: Release) -> None:
        try:
            records = await handshake(conn, True, self._name, self._key)
            link = TlsLink(self._handler, records, inbound=True, firewall_mark=self._mark)
            link.on_open = self._on_link
            link._release = release  # the link gives the slot back when it goes
            await asyncio.get_running_loop().create_connection(lambda: link, sock=conn)
        except BaseException as exc:
            if isinstance(exc, TlsError):
                log.info("refused a TLS peer: %s", exc)
            conn.close()
            release()
            if not isinstance(exc, (TlsError, OSError)):
                raise

    def close(self) -> None:
        self._accepting.cancel()
        for task in self._tasks:
            task.cancel()
        self._sock.close()


async def listen(
    host: str,
    port: int,
    handler: LinkHandler,
    on_link: Callable[[Link], None],
    *,
    network_name: bytes,
    key: bytes,
    firewall_mark: int | None = None,
    limits: InboundLimits | None = None,
) -> TlsListener:
    sock = listening_socket(host, port, firewall_mark)
    return TlsListener(sock, handler, on_link, network_name, key, firewall_mark, limits)
