"""SOCKS5 proxy discovery and local forwarding (extras.md §1), as the reference does it.

Discovery knocks on port 1080 of the key-derived address of every selected route's origin, once
a minute while probing is on, and remembers which answer like an open SOCKS5 server. Connecting
binds ``[::]:1080`` and splices every accepted connection, byte for byte, to one remote proxy:
the client's SOCKS handshake is answered by the remote server, never parsed here.

Differences that no client of the reference can rely on: probes run at most ``MAX_PROBES`` at a
time (the reference opens one connection per route at once); starting twice does not probe
twice; reconnecting closes the old listener before binding the new one (the reference can race
itself into "address in use").
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from enum import Enum

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


def classify(reply: bytes) -> ProbeStatus:
    """What a server's 2-byte answer to ``GREETING`` says it is."""
    if reply == b"\x05\x00":
        return ProbeStatus.VALID
    if reply == b"\x05\xff":
        return ProbeStatus.AUTHENTICATION_REQUIRED
    return ProbeStatus.NOT_A_PROXY


def socket_text(host: str, port: int) -> str:
    """Rust's ``SocketAddr`` display: ``[v6]:port`` or ``v4:port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_socket_address(text: str) -> tuple[str, int]:
    """``1.2.3.4:5`` or ``[v6]:5`` exactly as Rust's ``SocketAddr`` parses them; ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 0xFFFF:
        raise ValueError(f"{text!r} is not a socket address")
    if host.startswith("[") and host.endswith("]"):
        return str(ipaddress.IPv6Address(host[1:-1])), int(port)
    return str(ipaddress.IPv4Address(host)), int(port)


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


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_SPLICE_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        pass


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
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.Task[None]] = set()
        self.target: str | None = None

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
        while True:
            await self.probe_round()
            await asyncio.sleep(PROBE_INTERVAL)

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
        if remote is not None:
            try:
                host, port = parse_socket_address(remote)
            except ValueError as exc:
                raise ProxyError(str(exc)) from None
        else:
            host, port = await self._race(), self.remote_port
        await self._close_session()
        try:
            self._server = await asyncio.start_server(
                lambda r, w: self._accepted(r, w, host, port), *self.listen
            )
        except OSError as exc:
            raise ProxyError(f"cannot listen on {socket_text(*self.listen)}: {exc}") from None
        self.target = socket_text(host, port)
        log.info("forwarding %s to proxy %s", socket_text(*self.listen), self.target)
        return self.target

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

    def _accepted(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        task = asyncio.get_running_loop().create_task(self._splice(reader, writer, host, port))
        self._streams.add(task)
        task.add_done_callback(self._streams.discard)

    async def _splice(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        remote_writer = None
        try:
            remote_reader, remote_writer = await asyncio.open_connection(host, port)
            await asyncio.gather(_pipe(reader, remote_writer), _pipe(remote_reader, writer))
        except OSError as exc:
            log.debug("proxy connection to %s failed: %s", socket_text(host, port), exc)
        finally:
            for w in (writer, remote_writer):
                if w is not None:
                    w.close()

    async def disconnect(self) -> None:
        """End forwarding (listener and open streams); probing goes on."""
        await self._close_session()
        self.target = None

    async def _close_session(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        streams = list(self._streams)
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def close(self) -> None:
        self.stop_probing()
        await self.disconnect()
