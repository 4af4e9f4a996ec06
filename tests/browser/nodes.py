"""In-process loopback nodes whose REST server (the dashboard's origin) can be slowed down,
stopped and started again at the same address."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from mycelium.api import rest
from mycelium.api.facade import NodeApi
from mycelium.api.server import Servers
from mycelium.identity import Identity
from mycelium.links.endpoint import Endpoint
from mycelium.node import Node, NodeConfig

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiNode:
    def __init__(self, peers: list[Endpoint] | None = None) -> None:
        self.config = NodeConfig.loopback(peers or [])
        self.identity: Identity = self.config.identity  # type: ignore[assignment]
        self.node: Node | None = None
        self.servers: Servers | None = None
        self.api_port = 0
        #: Seconds an API request waits before it is handled: every request, or only those
        #: for ``slow_path`` when set.
        self.delay = 0.0
        self.slow_path: str | None = None
        self._in_flight: Counter[str] = Counter()
        #: Per path, the most requests ever in flight at once.
        self.peak: Counter[str] = Counter()

    @property
    def n(self) -> Node:
        assert self.node is not None
        return self.node

    @property
    def endpoint(self) -> str:
        return f"tcp://[::1]:{self.n.tcp_port}"

    def url(self, query: str = "") -> str:
        return f"http://127.0.0.1:{self.api_port}/{query}"

    @web.middleware
    async def _slow(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        self._in_flight[path] += 1
        self.peak[path] = max(self.peak[path], self._in_flight[path])
        try:
            if self.delay and self.slow_path in (None, path):
                await asyncio.sleep(self.delay)
            return await handler(request)
        finally:
            self._in_flight[path] -= 1

    async def start(self) -> None:
        """Start (again): same identity, and the same TCP and API ports as the first time."""
        self.node = Node(self.config)
        await self.node.start()
        self.config.tcp_listen_port = self.node.tcp_port
        app = rest.build_app(NodeApi(self.node))
        app.middlewares.append(self._slow)
        self.servers = Servers()
        await self.servers.serve("REST", app, f"127.0.0.1:{self.api_port}")
        self.api_port = self.servers.addresses["REST"][1]

    async def stop(self) -> None:
        if self.servers is not None:
            await self.servers.close()
            self.servers = None
        if self.node is not None:
            await self.node.stop()
            self.node = None


async def wait_for(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
