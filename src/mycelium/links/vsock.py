"""vsock links (docs/wire.md §6.5): the TCP framing over ``AF_VSOCK`` stream sockets, never TLS.

The link runs on a small transport of its own (loop reader/writer callbacks): uvloop cannot adopt
an ``AF_VSOCK`` socket. Addresses come from connect / accept, never from the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from .admission import InboundLimits
from .base import Link, LinkHandler
from .endpoint import Endpoint
from .tcp import StreamLink

log = logging.getLogger(__name__)

#: Static link cost of vsock (docs/wire.md §6.7): a local channel, cheaper than any IP transport.
COST = 5
#: Listen on every CID the kernel gives this machine.
VMADDR_CID_ANY = 0xFFFFFFFF
CONNECT_TIMEOUT = 10.0


def available() -> bool:
    """Whether this Python and kernel know ``AF_VSOCK`` at all."""
    family = getattr(socket, "AF_VSOCK", None)
    if family is None:
        return False
    try:
        socket.socket(family, socket.SOCK_STREAM).close()
    except OSError:
        return False
    return True


def address_text(address: tuple[int, int]) -> str:
    """``CID:PORT``, as the reference prints a vsock address."""
    return f"{int(address[0])}:{int(address[1])}"


class VsockLink(StreamLink):
    protocol = "vsock"
    _label = "VSOCK"

    def __init__(
        self,
        handler: LinkHandler,
        *,
        inbound: bool,
        local: tuple[int, int],
        remote: tuple[int, int],
    ) -> None:
        super().__init__(handler, inbound=inbound)
        self.local_text = address_text(local)
        self.remote_text = address_text(remote)
        self.remote_host, self.remote_port = str(int(remote[0])), int(remote[1])
        self.static_cost = COST

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # No TCP options, no firewall mark (the reference sets none on vsock), no address lookup.
        self._transport = transport  # type: ignore[assignment]
        self.static_cost = COST
        transport.set_write_buffer_limits(high=4 * 1024 * 1024, low=1024 * 1024)  # type: ignore[attr-defined]
        if self.on_open is not None:
            self._await_first_packet()


class SocketTransport(asyncio.Transport):
    """A byte-stream transport on the loop's reader/writer callbacks, for any stream socket.

    uvloop runs foreign sockets through libuv's TCP handle, which sets ``TCP_NODELAY`` and fails
    on ``AF_VSOCK``; readiness callbacks work with any file descriptor on every loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StreamLink):
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._buffer = bytearray()
        self._high = 64 * 1024
        self._low = 16 * 1024
        self._paused = False
        self._closing = False
        self._closed = False
        sock.setblocking(False)
        protocol.connection_made(self)
        if not self._closed:
            loop.add_reader(self._fd, self._on_readable)

    # --- asyncio.Transport ------------------------------------------------------------------
    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "socket":
            return self._sock
        return default

    def is_closing(self) -> bool:
        return self._closing or self._closed

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._closed or not data:
            return
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._on_writable)
        self._buffer += data
        self._check_high()

    def writelines(self, list_of_data: object) -> None:
        self.write(b"".join(list_of_data))  # type: ignore[arg-type]

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        if self._closing or self._closed:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._buffer:
            self._loop.call_soon(self._finish, None)

    def abort(self) -> None:
        self._finish(None)

    # --- readiness ------------------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        if not data:
            self._protocol.eof_received()
            self._finish(None)
            return
        self._protocol.data_received(data)

    def _on_writable(self) -> None:
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del self._buffer[:sent]
        if not self._buffer:
            self._loop.remove_writer(self._fd)
            if self._closing:
                self._finish(None)
                return
        if self._paused and len(self._buffer) <= self._low:
            self._paused = False
            self._protocol.resume_writing()

    def _check_high(self) -> None:
        if not self._paused and len(self._buffer) > self._high:
            self._paused = True
            self._protocol.pause_writing()

    def _fatal(self, exc: Exception) -> None:
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._buffer.clear()
        self._sock.close()
        self._protocol.connection_lost(exc)


def wrap(
    sock: socket.socket,
    handler: LinkHandler,
    *,
    inbound: bool,
    local: tuple[int, int],
    remote: tuple[int, int],
    on_open: Callable[[Link], None] | None = None,
    limits: InboundLimits | None = None,
) -> VsockLink:
    """Run a connected stream socket as a vsock link (the link owns the socket afterwards)."""
    link = VsockLink(handler, inbound=inbound, local=local, remote=remote)
    link.on_open = on_open
    link.limits = limits
    SocketTransport(asyncio.get_running_loop(), sock, link)
    return link


async def dial(endpoint: Endpoint, handler: LinkHandler, **_: object) -> VsockLink:
    """Connect to ``vsock://CID:PORT``; the link delivers nothing until ``start()``."""
    if not available():
        raise ConnectionError("vsock is not available on this system")
    cid, port = int(endpoint.host), endpoint.port
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        # A blocking connect in a thread: uvloop's sock_connect resolves every non-Unix address
        # with getaddrinfo, which knows nothing of CIDs.
        sock.settimeout(CONNECT_TIMEOUT)
        await asyncio.to_thread(sock.connect, (cid, port))
        local = sock.getsockname()
        return wrap(sock, handler, inbound=False, local=local, remote=(cid, port))
    except BaseException:
        sock.close()
        raise


class VsockListener:
    """Accepts vsock connections in a task; ``close()`` stops it (the ``AbstractServer`` subset
    the node uses)."""

    def __init__(
        self, sock: socket.socket, handler: LinkHandler, on_link: Callable[[Link], None]
    ) -> None:
        self._sock = sock
        self._handler = handler
        self._on_link = on_link
        self._limits = InboundLimits()
        self._task = asyncio.get_running_loop().create_task(self._accept_loop())
        self._sockets = (sock,)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return self._sockets

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        local = self._sock.getsockname()
        while True:
            try:
                conn, remote = await loop.sock_accept(self._sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                log.warning("vsock accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            try:
                with contextlib.suppress(OSError):
                    local = conn.getsockname()
                wrap(
                    conn,
                    self._handler,
                    inbound=True,
                    local=local,
                    remote=remote,
                    on_open=self._on_link,
                    limits=self._limits,
                )
            except OSError as exc:
                conn.close()
                log.warning("vsock connection from %s dropped: %s", address_text(remote), exc)

    def close(self) -> None:
        self._task.cancel()
        self._sock.close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def listen(
    port: int,
    handler: LinkHandler,
    on_link: Callable[[Link], None],
    *,
    cid: int = VMADDR_CID_ANY,
    **_: object,
) -> VsockListener:
    """Accept vsock links on ``port`` (every local CID unless ``cid`` says otherwise)."""
    if not available():
        raise OSError("vsock is not available on this system")
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        sock.bind((cid, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return VsockListener(sock, handler, on_link)
