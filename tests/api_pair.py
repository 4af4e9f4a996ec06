"""Two in-process nodes over loopback TCP, the first with its REST, JSON-RPC and metrics servers
on ephemeral ports: what the API and CLI client tests talk to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from click.testing import CliRunner, Result

from mycelium.api import Servers, start_servers
from mycelium.cli.main import cli
from mycelium.identity import node_subnet
from mycelium.links.endpoint import Endpoint
from mycelium.node import Node, NodeConfig

config = NodeConfig.loopback


class Pair:
    a: Node
    b: Node
    servers: Servers
    http: aiohttp.ClientSession

    def url(self, name: str, path: str = "") -> str:
        host, port = self.servers.addresses[name]
        return f"http://{host}:{port}{path}"

    async def rest(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.url("REST", "/api/v1" + path), **kw) as r:
            body = await r.text()
            ctype = r.headers.get("Content-Type", "")
            return r.status, json.loads(body) if "json" in ctype else body

    async def rpc(self, method: str, params: Any = None) -> dict[str, Any]:
        call = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params or []}
        async with self.http.post(self.url("JSON-RPC", "/rpc"), json=call) as r:
            return await r.json()  # type: ignore[no-any-return]


async def running_pair() -> AsyncIterator[Pair]:
    p = Pair()
    p.a = Node(config())
    await p.a.start()
    p.b = Node(config([Endpoint("tcp", "::1", p.a.tcp_port)]))
    await p.b.start()
    p.servers = await start_servers(
        p.a, api_addr="127.0.0.1:0", jsonrpc_addr="127.0.0.1:0", metrics_addr="127.0.0.1:0"
    )
    p.http = aiohttp.ClientSession()
    b_subnet = node_subnet(p.b.identity.public_key)
    async with asyncio.timeout(10):
        while not any(v.subnet == b_subnet and v.selected for v in p.a.router.routes()):
            await asyncio.sleep(0.02)
    try:
        yield p
    finally:
        await p.http.close()
        await p.servers.close()
        await p.b.stop()
        await p.a.stop()


async def run_cli(p: Pair, *args: str) -> Result:
    host, port = p.servers.addresses["REST"]
    return await asyncio.to_thread(CliRunner().invoke, cli, ["--api-addr", f"{host}:{port}", *args])
