"""SOCKS5 proxy discovery and local forwarding (docs/extras.md §1), as the reference does it.

Discovery knocks on port 1080 of the key-derived address of every selected route's origin, once
a minute while probing is on, and remembers which answer like an open SOCKS5 server. Connecting
binds ``[::]:1080`` and splices every accepted connection, byte for byte, to one remote proxy:
the client's SOCKS handshake is answered by the remote server, never parsed here.

Probes go through the operating system's stack, so through the node's TUN device: with
``--no-tun`` nothing routes 400::/7 and every probe ends as "not listening", as in the reference.

Differences that no client of the reference can rely on: probes run at most ``MAX_PROBES`` at a
time (the reference opens one connection per route at once), and a round longer than the period
delays the next one instead of overlapping it; starting twice does not probe twice; connects and
disconnects take turns, and reconnecting closes the old listener before binding the new one (the
reference can race itself into "address in use"); the auto-connect race gives each candidate
``PROBE_TIMEOUT`` rather than the kernel's connect timeout, so the API call cannot hang for minutes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from enum import Enum

from .socket_address import parse_socket_address, socket_text
from .subnet import GLOBAL_SUBNET

log = logging.getLogger(__name__)

SOCKS_PORT = 1080
PROBE_INTERVAL = 60.0
PROBE_TIMEOUT = 5.0
MAX_PROBES = 256
GREETING = b"\x05\x01\x00"  # version 5, one method: no authentication
_SPLICE_CHUNK = 64 * 1024


class ProbeStatus(Enum):
    VALID = "valid"
    AUTHENTICATION_REQUIRED = "authenticationRequired"
    NOT_A_PROXY = "notAProxy"
    NOT_LISTENING = "notListening"


class ProxyError(Exception):
    """No proxy answered, or the local listener could not be bound."""


class ProxyTargetRefused(ProxyError):
    """A target outside the overlay, refused by ``check_target``."""


def check_target(host: str) -> None:
    """Refuse a forwarding target that is not an overlay (400::/7) address.

    The listener on ``[::]:1080`` is open to every overlay peer and LAN neighbour, and a target is
    reached from this host: a loopback, LAN or container address would hand them a local service
    (this node's own API among them). The feature is for SOCKS5 servers on the overlay, which is
    all that discovery ever finds; see docs/api-security.md §5. The API applies this to the targets
    its callers name; code embedding ``Proxy`` is trusted and may forward anywhere.
    """
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        raise ProxyTargetRefused(f"{host!r} is not an IP address") from None
    if address.version != 6 or not GLOBAL_SUBNET.contains(address.packed):
        raise ProxyTargetRefused(
            f"{host} is not an overlay address: a proxy target must be in {GLOBAL_SUBNET}"
        )


def classify(reply: bytes) -> ProbeStatus:
    """What a server's 2-byte answer to ``GREETING`` says it is."""
    if reply == b"\x05\x00":
        return ProbeStatus.VALID
    if reply == b"\x05\xff":
        return ProbeStatus.AUTHENTICATION_REQUIRED
    return ProbeStatus.NOT_A_PROXY


def next_tick(due: float, now: float, interval: float = PROBE_INTERVAL) -> float:
    """When the tick after the one ``due`` falls, given it fired at ``now``: one period later,
    or, when a slow round already passed that, the next multiple of the period (missed ticks
    are skipped, as tokio's ``MissedTickBehavior::Skip`` does), so the period stays fixed."""
    following = due + interval
    if following <= now:
        following += ((now - following) // interval + 1) * interval
    return following


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bound as tokio binds it: SO_REUSEADDR, and ``::`` left dual-stack (asyncio alone would
    make it IPv6-only, refusing clients of 127.0.0.1:1080 that the reference accepts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def knock(host: str, port: int = SOCKS_PORT) -> ProbeStatus:
    """Greet ``host:port`` as a SOCKS5 client within ``PROBE_TIMEOUT``."""
    writer = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(GREETING)
            await writer.drain()
            return classify(await reader.readexactly(2))
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return ProbeStatus.NOT_LISTENING
    finally:
        if writer is not None:
            writer.close()


async def _splice(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
) -> None:
    """Copy both ways until both sides have closed; an error on either side ends both, as
    tokio's ``copy_bidirectional`` does (a reset client must not pin the remote stream)."""
    remote_writer = None
    try:
        remote_reader, remote_writer = await asyncio.open_connection(host, port)
        async with asyncio.TaskGroup() as both:
            both.create_task(_pipe(reader, remote_writer))
            both.create_task(_pipe(remote_reader, writer))
    except* OSError as errors:
        log.debug("proxy stream to %s ended: %s", socket_text(host, port), errors.exceptions)
    finally:
        for w in (writer, remote_writer):
            if w is not None:
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One direction of a splice; its end of stream is passed on as a half-close."""
    while data := await reader.read(_SPLICE_CHUNK):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


class _Session:
    """One connect's listener and every stream it spliced to ``host:port``; ending the session
    ends them all, including a connection the listener accepted just before it closed."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None
        self._streams: set[asyncio.Task[None]] = set()
        self._ended = False

    async def listen(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._accepted, sock=_listening_socket(host, port))

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._ended:
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(_splice(reader, writer, self.host, self.port))
        self._streams.add(task)
        task.add_done_callback(self._streams.discard)

    async def end(self) -> None:
        self._ended = True
        if self.server is not None:
            self.server.close()  # the port is free once this returns
        streams = list(self._streams)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()


class Proxy:
    """Probing state and the forwarding session. ``targets()`` lists the addresses to probe."""

    def __init__(
        self,
        targets: Callable[[], list[str]],
        *,
        listen: tuple[str, int] = ("::", SOCKS_PORT),
        remote_port: int = SOCKS_PORT,
    ) -> None:
        self._targets = targets
        self.listen = listen
        self.remote_port = remote_port
        #: address -> last probe result; never pruned, as in the reference.
        self.statuses: dict[str, ProbeStatus] = {}
        self._prober: asyncio.Task[None] | None = None
        self._session: _Session | None = None
        self._session_turn = asyncio.Lock()  # one connect or disconnect at a time

    @property
    def target(self) -> str | None:
        """Where the local listener forwards to, while connected."""
        s = self._session
        return None if s is None else socket_text(s.host, s.port)

    # --- discovery ----------------------------------------------------------------------------
    def start_probing(self) -> None:
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(self._probe_forever())

    def stop_probing(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            self._prober = None

    @property
    def probing(self) -> bool:
        return self._prober is not None and not self._prober.done()

    def valid(self) -> list[str]:
        return [ip for ip, status in self.statuses.items() if status is ProbeStatus.VALID]

    async def _probe_forever(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()  # the first round starts at once
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due = next_tick(due, loop.time())
            await self.probe_round()

    async def probe_round(self) -> None:
        limit = asyncio.Semaphore(MAX_PROBES)

        async def probe(address: str) -> None:
            async with limit:
                self.statuses[address] = await knock(address, self.remote_port)

        await asyncio.gather(*(probe(a) for a in self._targets()))

    # --- forwarding ---------------------------------------------------------------------------
    async def connect(self, remote: str | None) -> str:
        """Forward ``[::]:1080`` to ``remote`` (a socket address) or to the first valid proxy
        that answers; returns the target as Rust displays it. Raises ProxyError."""
        async with self._session_turn:
            if remote is not None:
                try:
                    host, port = parse_socket_address(remote)
                except ValueError as exc:
                    raise ProxyError(str(exc)) from None
            else:
                host, port = await self._race(), self.remote_port
            await self._end_session()
            session = _Session(host, port)
            try:
                await session.listen(*self.listen)
            except OSError as exc:
                raise ProxyError(f"cannot listen on {socket_text(*self.listen)}: {exc}") from None
            self._session = session
            log.info("forwarding %s to proxy %s", socket_text(*self.listen), self.target)
            return socket_text(host, port)

    async def _race(self) -> str:
        """The first valid proxy to answer the greeting again."""
        loop = asyncio.get_running_loop()
        knocks = {loop.create_task(knock(a, self.remote_port)): a for a in self.valid()}
        pending = set(knocks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.result() is ProbeStatus.VALID:
                        return knocks[task]
        finally:
            for task in pending:
                task.cancel()
        raise ProxyError("no valid proxy")

    async def disconnect(self) -> None:
        """End forwarding (listener and open streams); probing goes on."""
        async with self._session_turn:
            await self._end_session()

    async def _end_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.end()

    async def close(self) -> None:
        self.stop_probing()
        await self.disconnect()
