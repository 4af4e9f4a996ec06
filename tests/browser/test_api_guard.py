"""The local API against a hostile web page, in a real headless Chromium: the attack of issue 12
(docs/api-security.md). A page from another origin sends the browser's "simple" cross-site POSTs
(``text/plain``, ``no-cors``: no preflight, so the browser delivers them) to REST and JSON-RPC;
the node must act on none of them. Two defences stop them, each on its own (checked by
disabling the other): the Origin check and the refusal of non-JSON bodies. The same call from the
node's own origin (the dashboard's) with a JSON body does act, which shows the calls would work."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from browser.cdp import Browser
from browser.nodes import ApiNode
from mycelium.api import jsonrpc
from mycelium.api.facade import NodeApi
from mycelium.api.server import Servers

EVIL_PAGE = "<!doctype html><title>an ordinary web page</title><p>nothing to see"

#: Sends each request and reports how it ended: an opaque response means the browser delivered it.
SEND = """(async () => {
  const requests = %s;
  const outcomes = [];
  for (const [url, body] of requests) {
    try {
      const r = await fetch(url, {method: 'POST', mode: %s, body,
                                  headers: {'Content-Type': %s}});
      outcomes.push(r.type === 'opaque' ? 'delivered' : r.status);
    } catch (e) {
      outcomes.push('failed: ' + e);
    }
  }
  return outcomes;
})()"""


class Target:
    """A node with REST (serving the dashboard) and JSON-RPC, and an unrelated site."""

    def __init__(self) -> None:
        self.node = ApiNode()
        self.servers = Servers()

    async def start(self) -> None:
        await self.node.start()
        api = NodeApi(self.node.n)
        await self.servers.serve("JSON-RPC", lambda: jsonrpc.build_app(api), "127.0.0.1:0")

        async def page(_: web.Request) -> web.Response:
            return web.Response(text=EVIL_PAGE, content_type="text/html")

        evil = web.Application()
        evil.router.add_get("/", page)
        await self.servers.serve("evil", lambda: evil, "127.0.0.1:0")

    def url(self, name: str) -> str:
        host, port = self.servers.addresses[name]
        return f"http://{host}:{port}/"

    @property
    def rest(self) -> str:
        return self.node.url()

    def attacks(self, peer: str, topic: str) -> list[tuple[str, str]]:
        rpc = self.url("JSON-RPC")
        return [
            (self.rest + "api/v1/admin/peers", json.dumps({"endpoint": peer})),
            (rpc, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "addPeer", "params": [peer]})),
            (rpc, json.dumps({"jsonrpc": "2.0", "id": 2, "method": "addTopic", "params": [topic]})),
        ]

    def endpoints(self) -> set[str]:
        return {str(e.endpoint) for e in self.node.n.peer_manager.peers()}

    def topics(self) -> list[bytes]:
        return self.node.n.message_engine.topics.topics()

    async def stop(self) -> None:
        await self.servers.close()
        await self.node.stop()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    await t.start()
    try:
        yield t
    finally:
        await t.stop()


async def test_a_foreign_page_cannot_drive_the_api_but_the_dashboard_can(
    browser: Browser, target: Target
) -> None:
    page = await browser.new_page()
    await page.goto(target.url("evil"))
    attacks = target.attacks("tcp://[::1]:9", "ZXZpbA==")
    outcomes = await page.js(SEND % (json.dumps(attacks), '"no-cors"', '"text/plain"'))
    assert outcomes == ["delivered"] * 3, outcomes  # the browser sent every one of them
    assert target.endpoints() == set()
    assert target.topics() == []

    # The same REST call from the node's own origin, with a JSON body as the dashboard sends
    # it, does act (JSON-RPC has no page of its own: every origin is foreign to it).
    await page.goto(target.rest)
    own = [(target.rest + "api/v1/admin/peers", json.dumps({"endpoint": "tcp://[::1]:10"}))]
    outcomes = await page.js(SEND % (json.dumps(own), '"same-origin"', '"application/json"'))
    assert outcomes == [204], outcomes
    assert target.endpoints() == {"tcp://[::1]:10"}
