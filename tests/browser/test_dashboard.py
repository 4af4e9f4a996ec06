"""The dashboard in a real headless Chromium, against real in-process nodes.

Line of three: A (whose API serves the page) <- B <- C, so A has a neighbour (B) and a
destination one hop further (C). Set DASHBOARD_SCREENSHOTS=<dir> to keep screenshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser.cdp import Browser, Page
from browser.fake import populate
from browser.nodes import ApiNode, wait_for
from mycelium.links.endpoint import Endpoint
from mycelium.node import Node, NodeConfig

#: Fast polling for tests; the page's default is every 2 s with a 5 s timeout.
QUERY = "?refresh=300&timeout=2000"
SHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")


def q(selector: str) -> str:
    return json.dumps(selector)


async def text(page: Page, selector: str) -> str:
    return str(await page.js(f"document.querySelector({q(selector)}).textContent"))


async def count(page: Page, selector: str) -> int:
    return int(await page.js(f"document.querySelectorAll({q(selector)}).length"))


#: Dots, bubbles and names of the neighbourhood picture that stick out of it (cut off).
OUTSIDE_PICTURE = """(() => {
  const box = document.getElementById('graph').getBoundingClientRect();
  return [...document.querySelectorAll('#graph circle, #graph text')].filter((e) => {
    const r = e.getBoundingClientRect();
    return r.left < box.left - 0.5 || r.right > box.right + 0.5
      || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5;
  }).map((e) => e.textContent || e.getAttribute('cx') + ',' + e.getAttribute('cy'));
})()"""


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(Path(SHOTS) / f"{name}.png")


def selected_subnets(node: Node) -> set[str]:
    return {str(v.subnet) for v in node.router.routes() if v.selected}


@dataclass
class Line:
    a: ApiNode
    b: Node
    c: Node

    @property
    def b_endpoint_at_a(self) -> str:
        """B as A's peer table lists it (an inbound peer: B's address and source port)."""
        (entry,) = self.a.n.peer_manager.peers()
        return str(entry.endpoint)


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    a = ApiNode()
    await a.start()
    b = Node(NodeConfig.loopback([Endpoint("tcp", "::1", a.n.tcp_port)]))
    await b.start()
    c = Node(NodeConfig.loopback([Endpoint("tcp", "::1", b.tcp_port)]))
    await c.start()
    try:
        await wait_for(lambda: str(c.identity.subnet) in selected_subnets(a.n))
        yield Line(a, b, c)
    finally:
        await c.stop()
        await b.stop()
        await a.stop()


async def open_page(browser: Browser, node: ApiNode, width: int = 1280, height: int = 900) -> Page:
    page = await browser.new_page(width, height)
    await page.goto(node.url(QUERY))
    await page.wait("document.getElementById('status').dataset.state === 'live'", what="live")
    return page


async def test_page_shows_node_neighbour_graph_routes_and_traffic(
    browser: Browser, line: Line
) -> None:
    a, b, c = line.a.n, line.b, line.c
    page = await open_page(browser, line.a)
    assert await text(page, "#node-address") == a.identity.address_text
    assert await text(page, "#node-subnet") == str(a.identity.subnet)
    assert await text(page, "#node-pubkey") == a.identity.public_key.hex()
    assert "none" in await text(page, "#node-tun")

    b_at_a = line.b_endpoint_at_a
    row = f'#peers-table tr[data-endpoint="{b_at_a}"]'
    await page.wait(f"document.querySelector({q(row)})?.dataset.state === 'alive'", what="B alive")
    # The page learns B's own subnet from the metric-0 route through B's link.
    assert await text(page, f"{row} td:nth-child(4)") == str(b.identity.subnet)
    assert await count(page, f'#graph .peer.alive[data-endpoint="{b_at_a}"]') == 1

    for node in (b, c):
        await page.wait(
            f"document.querySelector('#routes-table tr[data-subnet=\"{node.identity.subnet}\"]')",
            what=f"route to {node.identity.subnet}",
        )
    c_row = f'#routes-table tr[data-subnet="{c.identity.subnet}"]'
    assert await text(page, f"{c_row} td:nth-child(2)") == b_at_a  # next hop, by peer name
    # C lies beyond B in the picture; B's own subnet is B's dot, not a destination.
    assert await count(page, f'#graph .dest[data-subnet="{c.identity.subnet}"]') == 1
    assert await count(page, f'#graph .dest[data-subnet="{b.identity.subnet}"]') == 0
    assert await page.js(OUTSIDE_PICTURE) == []

    await page.type_into("#route-filter", str(c.identity.subnet)[:12])
    await page.wait("document.querySelectorAll('#routes-table tbody tr').length === 1")
    await page.type_into("#route-filter", "no-such-route")
    await page.wait("!document.getElementById('routes-empty').hidden")
    assert await count(page, "#routes-table tbody tr") == 0

    # Traffic: messages from A to C go out through B; the graphs read them from the counters.
    async def send() -> None:
        assert a.messages is not None
        while True:
            await a.messages.push(c.identity.address, b"dashboard")
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(send())
    try:
        await page.wait(
            "document.getElementById('tile-routed').textContent !== '0/s' &&"
            " document.getElementById('tile-routed').textContent !== '\u2013'",
            what="packets routed per second above zero",
        )
        await page.wait(
            "document.querySelector('#chart-packets path[data-series=routed]')"
            "?.getAttribute('d').includes('L')",
            what="a line in the packets chart",
        )
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    await shot(page, "line-desktop")
    assert page.errors == []


async def test_adding_and_removing_a_peer_through_the_page(browser: Browser, line: Line) -> None:
    a = line.a.n
    async with Node(NodeConfig.loopback()) as d:
        page = await open_page(browser, line.a)
        endpoint = f"tcp://[::1]:{d.tcp_port}"
        await page.type_into("#peer-endpoint", endpoint)
        await page.click("#add-peer-button")
        await wait_for(lambda: endpoint in {str(e.endpoint) for e in a.peer_manager.peers()})
        row = f'#peers-table tr[data-endpoint="{endpoint}"]'
        await page.wait(f"document.querySelector({q(row)})?.dataset.state === 'alive'")
        assert "Added" in await text(page, "#peer-feedback")
        await page.wait(
            f"document.querySelector('#routes-table tr[data-subnet=\"{d.identity.subnet}\"]')",
            what="the new peer's route",
        )

        # The node's own refusals reach the user.
        await page.type_into("#peer-endpoint", endpoint)
        await page.click("#add-peer-button")
        await page.wait("document.getElementById('peer-feedback').textContent.includes('already')")
        await page.type_into("#peer-endpoint", "tcp://not-an-address")
        await page.press("Enter", 13)
        await page.wait(
            "document.getElementById('peer-feedback').textContent.startsWith('Not added')"
        )
        assert await page.js("document.getElementById('peer-feedback').classList.contains('error')")

        # Removal asks once more before it acts.
        button = f"{row} button[data-remove]"
        await page.click(button)
        await page.wait(f"document.querySelector({q(button)}).textContent === 'Confirm removal'")
        assert endpoint in {str(e.endpoint) for e in a.peer_manager.peers()}
        await page.click(button)
        await wait_for(lambda: endpoint not in {str(e.endpoint) for e in a.peer_manager.peers()})
        await page.wait(f"!document.querySelector({q(row)})", what="the row gone")
        assert page.errors == []


async def test_copy_address_puts_it_on_the_clipboard(browser: Browser, line: Line) -> None:
    page = await open_page(browser, line.a)
    origin = line.a.url().rstrip("/")
    await browser.grant(origin, ["clipboardReadWrite", "clipboardSanitizedWrite"])
    await page.click("#copy-address")
    await page.wait("document.getElementById('copy-feedback').textContent === 'Copied'")
    assert await page.js("navigator.clipboard.readText()") == line.a.n.identity.address_text


async def test_page_rides_out_a_slow_api_and_a_node_restart(browser: Browser, line: Line) -> None:
    api = line.a
    page = await browser.new_page()
    await page.goto(api.url("?refresh=300&timeout=4000"))
    await page.wait("document.getElementById('status').dataset.state === 'live'", what="live")
    address = api.n.identity.address_text

    # Slow: one of the page's requests takes 2 s, far longer than the pause between
    # refreshes. The page says so, keeps showing changes, and never asks again before the
    # answer came (a timer-driven poll would pile up requests behind the slow one).
    slow = "/api/v1/pymycelium/messages"
    api.slow_path, api.delay = slow, 2.0
    await page.wait("document.getElementById('status').dataset.state === 'slow'", what="slow")
    async with Node(NodeConfig.loopback()) as d:
        endpoint = f"tcp://[::1]:{d.tcp_port}"
        api.n.peer_manager.add_peer(Endpoint.parse(endpoint))
        await page.wait(
            f"document.querySelector('#peers-table tr[data-endpoint=\"{endpoint}\"]')",
            what="a peer added while the API is slow",
        )
        assert api.peak[slow] == 1
        api.delay = 0.0
        await page.wait("document.getElementById('status').dataset.state === 'live'", what="live")

        # Stalled past the page's timeout: counted as lost, and back when it answers again.
        api.slow_path, api.delay = None, 5.0
        await page.wait("document.getElementById('status').dataset.state === 'disconnected'")
        assert "no answer within" in await text(page, "#banner")
        api.delay = 0.0
        await page.wait("document.getElementById('status').dataset.state === 'live'", what="back")

    # Gone: the page says so and keeps the last data on screen.
    await api.stop()
    await page.wait("document.getElementById('status').dataset.state === 'disconnected'")
    assert await page.js("!document.getElementById('banner').hidden")
    assert await page.js("document.body.classList.contains('stale')")
    assert await text(page, "#node-address") == address
    await shot(page, "disconnected")

    # Back at the same address (same identity, a new process life): the page recovers alone.
    await api.start()
    await page.wait("document.getElementById('status').dataset.state === 'live'", timeout=20)
    assert not await page.js("document.body.classList.contains('stale')")
    assert await text(page, "#node-address") == address
    await page.wait(
        "[...document.querySelectorAll('#route-events li.restart')]"
        ".some((li) => li.textContent.includes('node restarted'))",
        what="the restart noted",
    )
    # B redials the restarted node; the page shows it alive again.
    await page.wait(
        "[...document.querySelectorAll('#peers-table tr')]"
        ".some((tr) => tr.dataset.state === 'alive')",
        timeout=20,
        what="B back",
    )
    assert page.errors == []


@pytest.mark.parametrize(
    ("width", "height", "mobile"), [(1280, 900, False), (390, 844, True)], ids=["laptop", "phone"]
)
async def test_fifty_peers_and_a_thousand_routes_fit(
    browser: Browser, width: int, height: int, mobile: bool
) -> None:
    api = ApiNode()
    await api.start()
    try:
        made = populate(api.n, peers=50, routes=1000)
        page = await browser.new_page(width, height)
        await page.viewport(width, height, mobile)
        await page.goto(api.url(QUERY))
        await page.wait("document.querySelectorAll('#peers-table tbody tr').length > 0")
        # Nothing wider than the screen: wide tables scroll inside their cards.
        assert await page.js("document.documentElement.scrollWidth") <= width
        assert await page.js("window.innerWidth") == width
        # Nothing jumps as the numbers change (a click must land where the user aimed).
        tops = set()
        for _ in range(6):
            tops.add(await page.js("document.getElementById('routes-card').offsetTop"))
            await asyncio.sleep(0.3)
        assert len(tops) == 1, tops

        assert await count(page, "#peers-table tbody tr") == 20
        assert "of 50" in await text(page, "#peers-pager")
        assert await count(page, "#graph .peer") == 50
        # Beyond 40 destinations, one bubble per peer (counting them) instead of a dot each.
        bubbles = await page.js(
            "[...document.querySelectorAll('#graph .dest.group')].map((g) => +g.dataset.count)"
        )
        assert 0 < len(bubbles) <= 50
        # Every route is drawn except each live peer's own subnet, which is the peer's dot.
        alive = await count(page, "#graph .peer.alive")
        assert sum(bubbles) == len(made["selected"]) - alive
        assert await page.js(OUTSIDE_PICTURE) == []

        n_selected = len(made["selected"])
        assert await count(page, "#routes-table tbody tr") == 50
        # Subnets sort as addresses (not as text: 4c0:: before 40e::).
        shown = await page.js(
            "[...document.querySelectorAll('#routes-table tbody tr')]"
            ".map((tr) => tr.dataset.subnet)"
        )
        assert shown == sorted(made["selected"], key=ipaddress.ip_network)[:50]
        assert f"1\u201350 of {n_selected:,}" in await text(page, "#routes-pager")
        first = await page.js("document.querySelector('#routes-table tbody tr').dataset.subnet")
        await page.click("#routes-pager button:last-of-type")
        await page.wait("document.getElementById('routes-pager').textContent.includes('51\u2013')")
        assert (
            await page.js("document.querySelector('#routes-table tbody tr').dataset.subnet")
            != first
        )
        metric = "#routes-table thead th[data-sort=metric]"
        first_metric = "+document.querySelector('#routes-table tbody td:nth-child(3)').textContent"
        await page.click(metric)
        await page.wait(f"{first_metric} === 0")  # each peer's own subnet, at metric 0
        await page.click(metric)
        highest = max(v.metric for v in made["views"] if v.selected)
        await page.wait(
            "+document.querySelector('#routes-table tbody td:nth-child(3)')"
            f".textContent.replace(/,/g, '') === {highest}"
        )
        target = made["selected"][500]
        await page.type_into("#route-filter", target)
        await page.wait("document.querySelectorAll('#routes-table tbody tr').length === 1")
        assert await count(page, "#routes-pager button") == 0
        await page.type_into("#route-filter", "")
        await page.click('.tabs button[data-tab="fallback"]')
        await page.wait(
            f"document.querySelectorAll('#routes-table tbody tr').length === "
            f"{min(50, len(made['fallback']))}"
        )
        assert await page.js("document.documentElement.scrollWidth") <= width
        await shot(page, f"large-{'phone' if mobile else 'laptop'}")
        assert page.errors == []
    finally:
        await api.stop()


@pytest.mark.parametrize(
    ("width", "height", "mobile"), [(1280, 900, False), (390, 844, True)], ids=["laptop", "phone"]
)
async def test_named_peers_and_their_destinations_fit_the_picture(
    browser: Browser, width: int, height: int, mobile: bool
) -> None:
    api = ApiNode()
    await api.start()
    try:
        made = populate(api.n, peers=12, routes=40)  # the most peers still named
        page = await browser.new_page(width, height)
        await page.viewport(width, height, mobile)
        await page.goto(api.url(QUERY))
        await page.wait("document.querySelectorAll('#graph .peer').length === 12")
        assert await count(page, "#graph .peer text") == 12
        assert await count(page, "#graph .dest:not(.group)") == len(made["selected"]) - (
            await count(page, "#graph .peer.alive")
        )
        assert await page.js(OUTSIDE_PICTURE) == []
        await shot(page, f"named-{'phone' if mobile else 'laptop'}")
        assert page.errors == []
    finally:
        await api.stop()
