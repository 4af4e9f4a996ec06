"""The dashboard's files and its read-only JSON under /api/v1/pymycelium, on a live node pair
(the page itself is driven in a real browser in tests/browser)."""

from __future__ import annotations

import asyncio
from dataclasses import fields

import mycelium
from api_pair import Pair
from mycelium.api.dashboard import DROP_COUNTERS, STATIC_FILES
from mycelium.dataplane.counters import Counters


def test_every_drop_counter_is_a_data_plane_counter() -> None:
    names = {f.name for f in fields(Counters)}
    assert set(DROP_COUNTERS) <= names
    assert len(set(DROP_COUNTERS)) == len(DROP_COUNTERS)


async def test_page_and_files_are_served_with_a_strict_policy(pair: Pair) -> None:
    async with pair.http.get(pair.url("REST", "/")) as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        page = await r.text()
        policy = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "connect-src 'self'" in policy and "unsafe" not in policy
    for name in STATIC_FILES:
        if name != "index.html":
            assert f"/dashboard/{name}" in page
            async with pair.http.get(pair.url("REST", f"/dashboard/{name}")) as r:
                assert r.status == 200
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert len(await r.read()) > 100
    for path in (
        "/dashboard/",
        "/dashboard/../rest.py",
        "/dashboard/%2e%2e/rest.py",
        "/static/app.js",
    ):
        async with pair.http.get(pair.url("REST", path)) as r:
            assert r.status == 404, path


async def test_node_info(pair: Pair) -> None:
    status, info = await pair.rest("GET", "/pymycelium/node")
    assert status == 200
    assert info["version"] == mycelium.__version__
    assert info["referenceVersion"] == mycelium.REFERENCE_VERSION
    assert info["tun"] == {"enabled": False, "name": None}
    assert info["listen"] == {"tcp": pair.a.tcp_port, "quic": pair.a.quic_port}
    assert info["privateNetwork"] is None
    assert 0 <= info["uptime"] < 60


async def test_links_name_the_next_hop_of_routes(pair: Pair) -> None:
    status, links = await pair.rest("GET", "/pymycelium/links")
    assert status == 200
    (entry,) = pair.a.peer_manager.peers()
    (link,) = links
    assert link["endpoint"] == str(entry.endpoint)
    assert link["connectionId"] == entry.link.connection_id  # type: ignore[union-attr]
    assert link["linkCost"] == pair.a.router.link_cost(entry.link)  # type: ignore[arg-type]
    assert link["staticCost"] == entry.link.static_cost  # type: ignore[union-attr]
    _, routes = await pair.rest("GET", "/admin/routes/selected")
    assert {r["nextHop"] for r in routes} == {link["connectionId"]}


async def test_counters_follow_traffic(pair: Pair) -> None:
    a, b = pair.a, pair.b
    assert a.messages is not None and b.messages is not None
    _, before = await pair.rest("GET", "/pymycelium/counters")
    for _ in range(5):
        await a.messages.push(b.identity.address, b"x" * 100)
    for _ in range(5):
        assert await b.messages.pop(timeout=10) is not None
    _, after = await pair.rest("GET", "/pymycelium/counters")
    assert after["time"] > before["time"]
    # Each message is several packets (init, chunk, done, then b's acknowledgements).
    assert after["packets"]["sent"] >= before["packets"]["sent"] + 5
    assert after["packets"]["local"] > before["packets"]["local"]  # the acknowledgements
    assert after["packets"]["dropped"] == sum(after["drops"].values())
    assert after["bytes"]["routed"] > before["bytes"]["routed"]
    assert after["bytes"]["local"] > before["bytes"]["local"]
    assert after["bytes"]["linkOut"] > before["bytes"]["linkOut"]
    assert after["bytes"]["linkIn"] > before["bytes"]["linkIn"]
    assert after["dataPlane"]["sent"] == after["packets"]["sent"]


async def test_message_bus_summary(pair: Pair) -> None:
    status, body = await pair.rest("GET", "/pymycelium/messages")
    assert status == 200
    assert body["inbox"] == 0 and body["acceptByDefault"] is True and body["topics"] == []
    pair.a.message_engine.topics.add_source(b"dash", pair.b.identity.subnet)
    assert pair.b.messages is not None
    await pair.b.messages.push(pair.a.identity.address, b"for the inbox", b"dash")
    async with asyncio.timeout(10):
        while pair.a.message_engine.inbox_size == 0:
            await asyncio.sleep(0.02)
    _, body = await pair.rest("GET", "/pymycelium/messages")
    assert body["inbox"] == 1
    assert body["topics"] == [{"topic": "ZGFzaA==", "sources": 1, "forwardSocket": None}]
    assert body["counters"]["received"] == 1
