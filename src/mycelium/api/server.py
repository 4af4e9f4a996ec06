"""Starting and stopping the node's HTTP servers (REST and JSON-RPC) on their addresses."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from ..socket_address import parse_socket_address
from . import jsonrpc, rest
from .facade import NodeApi

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger(__name__)


class Servers:
    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []
        self.addresses: dict[str, tuple[str, int]] = {}

    async def serve(self, name: str, app: web.Application, address: str) -> None:
        """Like the reference, a server that cannot bind is logged and left out, not fatal."""
        try:
            host, port = parse_socket_address(address)
        except ValueError as exc:
            log.error("%s API disabled: %s", name, exc)
            return
        # aiohttp waits shutdown_timeout for in-flight handlers, then as long again after asking
        # them to stop: a long-polling message pop ignores the ask, so keep both waits short.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.25)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            log.error("%s API disabled: cannot listen on %s: %s", name, address, exc)
            await runner.cleanup()
            return
        sockets = getattr(site._server, "sockets", None) or ()
        bound = sockets[0].getsockname() if sockets else (host, port)
        self.addresses[name] = (str(bound[0]), int(bound[1]))
        self.runners.append(runner)
        log.info("%s API listening on %s", name, address)

    async def close(self) -> None:
        """All servers at once: each may wait out its own in-flight requests."""
        runners, self.runners = self.runners, []
        await asyncio.gather(*(runner.cleanup() for runner in runners))


async def start_servers(
    node: Node,
    *,
    api_addr: str | None,
    jsonrpc_addr: str | None,
    metrics_addr: str | None = None,
) -> Servers:
    api = NodeApi(node)
    servers = Servers()
    if api_addr:
        await servers.serve("REST", rest.build_app(api), api_addr)
    if jsonrpc_addr:
        await servers.serve("JSON-RPC", jsonrpc.build_app(api), jsonrpc_addr)
    if metrics_addr:
        from . import metrics

        await servers.serve("metrics", metrics.build_app(node), metrics_addr)
    return servers
