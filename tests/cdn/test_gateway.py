"""The CDN gateway against a fake registry and fake Redis shard servers on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from cdn_fixtures import FakeRedis, Registry, upload
from mycelium.cdn import meta
from mycelium.cdn.gateway import Gateway, request_host


@dataclass
class World:
    client: TestClient
    registry: Registry
    servers: list[FakeRedis]
    cache: Path

    async def get(self, digest: bytes, key: bytes | None, **headers: str) -> tuple[int, bytes, str]:
        query = {} if key is None else {"key": key.hex()}
        host = f"{digest.hex()}.{self.registry.host}"
        r = await self.client.get("/", params=query, headers={"Host": host, **headers})
        return r.status, await r.read(), r.headers.get("Content-Type", "")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    registry = Registry()
    await registry.start()
    servers = [FakeRedis() for _ in range(3)]
    for s in servers:
        await s.start()
    gateway = Gateway(tmp_path / "cache")
    gateway.prepare_cache(gateway.cache_dir)
    client = TestClient(TestServer(gateway.app()))
    await client.start_server()
    try:
        yield World(client, registry, servers, gateway.cache_dir)
    finally:
        await client.close()
        await gateway.close()
        for s in servers:
            await s.stop()
        await registry.stop()


async def test_a_file_is_rebuilt_from_its_data_shards_and_then_served_from_cache(
    world: World,
) -> None:
    content = os.urandom(2500)
    data, parity = world.servers[:2], world.servers[2]
    await parity.stop()  # a parity shard server that is down must not matter
    file = upload(content, [*data, parity], k=2, chunk=1000, mime="text/plain; charset=utf-8")
    digest, key = world.registry.publish(file)
    status, body, mime = await world.get(digest, key)
    assert (status, body, mime) == (200, content, "text/plain; charset=utf-8")
    assert sum(s.gets for s in data) == 6  # 3 blocks x 2 data shards
    cached = {p.name: p.read_bytes() for p in world.cache.iterdir()}
    assert cached == {
        b.encrypted_hash.hex(): content[b.start_offset : b.end_offset + 1] for b in file.blocks
    }
    for s in data:
        await s.stop()
    assert (await world.get(digest, key))[:2] == (200, content)


async def test_unencrypted_metadata_and_a_file_without_mime(world: World) -> None:
    file = upload(b"plain", world.servers, k=1, mime=None)
    digest, key = world.registry.publish(file, encrypt=False)
    assert key is None
    assert await world.get(digest, None) == (200, b"plain", "application/octet-stream")


async def test_request_errors(world: World) -> None:
    file = upload(b"x" * 100, world.servers, k=2)
    digest, key = world.registry.publish(file)
    assert key is not None
    assert (await world.get(digest, None))[0] == 422  # encrypted blob read as metadata
    assert (await world.get(digest, bytes(16)))[0] == 422  # wrong key
    assert (await world.get(os.urandom(16), key))[0] == 404  # the registry's status passes
    for bad_key in ("zz" * 16, "ab" * 8, ""):
        r = await world.client.get(
            "/", params={"key": bad_key}, headers={"Host": f"{digest.hex()}.{world.registry.host}"}
        )
        assert r.status == 400, bad_key
    for host in ("short.example", f"{'g' * 32}.example"):
        assert (await world.client.get("/", headers={"Host": host})).status == 400
    unreachable = f"{digest.hex()}.127.0.0.1:1"
    assert (await world.client.get("/", headers={"Host": unreachable})).status == 500
    assert (await world.client.get("/elsewhere")).status == 404


async def test_a_lost_data_shard_is_rebuilt_from_parity_and_two_are_an_error(
    world: World,
) -> None:
    content = os.urandom(700)
    file = upload(content, world.servers, k=2)
    digest, key = world.registry.publish(file)
    data, parity = world.servers[:2], world.servers[2]
    data[1].fail = True
    assert (await world.get(digest, key))[:2] == (200, content)
    assert parity.gets == 1  # asked only because a data shard failed
    for p in world.cache.iterdir():
        p.unlink()
    data[0].data.clear()  # a second loss: one parity shard cannot cover it
    assert (await world.get(digest, key))[0] == 500
    assert list(world.cache.iterdir()) == []


async def test_a_block_failing_after_the_first_cuts_the_body_short(world: World) -> None:
    content = os.urandom(3000)
    file = upload(content, world.servers, k=1, chunk=1000)
    digest, key = world.registry.publish(file)
    for server in world.servers:
        server.data[3].pop(file.blocks[2].encrypted_hash)
    host = f"{digest.hex()}.{world.registry.host}"
    r = await world.client.get("/", params={"key": key.hex()}, headers={"Host": host})  # type: ignore[union-attr]
    assert r.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await r.read()


async def test_a_mime_type_that_is_no_header_value_is_refused(world: World) -> None:
    file = upload(b"z", world.servers, k=1, mime="text/plain\r\nX-Evil: 1")
    digest, key = world.registry.publish(file)
    assert (await world.get(digest, key))[0] == 422


async def test_directory_listing_links_every_entry(world: World) -> None:
    a = world.registry.publish(upload(b"a", world.servers, k=1, name="a <b>.txt"))
    b = world.registry.publish(upload(b"b", world.servers, k=1, name="b.txt"), encrypt=False)
    directory = meta.Directory((a, b), "docs")
    digest, key = world.registry.publish(directory)
    status, body, mime = await world.get(digest, key)
    assert status == 200 and mime.startswith("text/html")
    page = body.decode()
    host = world.registry.host
    assert (
        f'<li><a href="http://{a[0].hex()}.{host}/?key={a[1].hex()}">a &lt;b&gt;.txt</a></li>'
        in page
    )  # type: ignore[union-attr]
    assert f'<li><a href="http://{b[0].hex()}.{host}/">b.txt</a></li>' in page
    assert page.rstrip().endswith("</ul></body></html>")


def test_the_host_comes_from_forwarded_then_x_forwarded_host_then_host() -> None:
    def host(**headers: str) -> str | None:
        return request_host(make_mocked_request("GET", "/", headers=headers))

    assert host(Forwarded='for=1.2.3.4;host="a.example", host=b', Host="c") == "a.example"
    assert host(**{"X-Forwarded-Host": "x.example"}, Host="c") == "x.example"
    assert host(Host="c.example") == "c.example"
