"""Starting and stopping the node's HTTP servers (REST and JSON-RPC) on their addresses.

The sockets are bound when the node starts (a busy port is reported at once), but the HTTP stack
(aiohttp, and the application and facade behind it) is imported and built on the first
connection: a node nobody queries never pays the ~17 MB it takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..socket_address import lookup_host, parse_socket_address

if TYPE_CHECKING:
    from aiohttp import web

    from ..node import Node
    from .facade import NodeApi

log = logging.getLogger(__name__)


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound, listening, non-blocking TCP sockets for ``host:port`` (one per address the host
    resolves to, IPv6 ones IPv6-only), as asyncio's ``create_server`` would make them."""
    passive = socket.AI_PASSIVE
    infos = socket.getaddrinfo(lookup_host(host), port, type=socket.SOCK_STREAM, flags=passive)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Servers:
    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []
        self.addresses: dict[str, tuple[str, int]] = {}
        #: Sockets still waiting for their first connection, and the tasks starting servers.
        self._idle: list[socket.socket] = []
        self._starting: set[asyncio.Task[None]] = set()

    async def serve(self, name: str, build: Callable[[], web.Application], address: str) -> None:
        """Listen on ``address`` now; build the app and start serving on the first connection.
        Like the reference, a server that cannot bind is logged and left out, not fatal."""
        try:
            host, port = parse_socket_address(address)
            sockets = listening_sockets(host, port)
        except ValueError as exc:
            log.error("%s API disabled: %s", name, exc)
            return
        except OSError as exc:
            log.error("%s API disabled: cannot listen on %s: %s", name, address, exc)
            return
        bound = sockets[0].getsockname()
        self.addresses[name] = (str(bound[0]), int(bound[1]))
        self._idle.extend(sockets)
        loop = asyncio.get_running_loop()

        def first_connection() -> None:
            for sock in sockets:
                loop.remove_reader(sock.fileno())
            task = loop.create_task(self._start(build, sockets))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

        for sock in sockets:
            loop.add_reader(sock.fileno(), first_connection)
        log.info("%s API listening on %s", name, address)

    async def _start(
        self, build: Callable[[], web.Application], sockets: list[socket.socket]
    ) -> None:
        from aiohttp import web

        # aiohttp waits shutdown_timeout for in-flight handlers, then as long again after asking
        # them to stop: a long-polling message pop ignores the ask, so keep both waits short.
        app = build()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.25)
        await runner.setup()
        self.runners.append(runner)
        for sock in sockets:
            self._idle.remove(sock)
            await web.SockSite(runner, sock).start()

    async def close(self) -> None:
        """All servers at once: each may wait out its own in-flight requests."""
        for task in list(self._starting):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        loop = asyncio.get_running_loop()
        for sock in self._idle:
            loop.remove_reader(sock.fileno())
            sock.close()
        self._idle = []
        runners, self.runners = self.runners, []
        await asyncio.gather(*(runner.cleanup() for runner in runners))


async def start_servers(
    node: Node,
    *,
    api_addr: str | None,
    jsonrpc_addr: str | None,
    metrics_addr: str | None = None,
) -> Servers:
    servers = Servers()
    shared: list[NodeApi] = []

    def facade() -> NodeApi:
        """The one facade both APIs share, made with the first app (like the apps, on the first
        connection)."""
        if not shared:
            from .facade import NodeApi

            shared.append(NodeApi(node))
        return shared[0]

    def rest_app() -> web.Application:
        from . import rest

        return rest.build_app(facade())

    def jsonrpc_app() -> web.Application:
        from . import jsonrpc

        return jsonrpc.build_app(facade())

    def metrics_app() -> web.Application:
        from . import metrics

        return metrics.build_app(node)

    if api_addr:
        await servers.serve("REST", rest_app, api_addr)
    if jsonrpc_addr:
        await servers.serve("JSON-RPC", jsonrpc_app, jsonrpc_addr)
    if metrics_addr:
        await servers.serve("metrics", metrics_app, metrics_addr)
    return servers
