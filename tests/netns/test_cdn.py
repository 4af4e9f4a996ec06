"""``--cdn-cache`` on a real node: the gateway on localhost:80 serves a file and a directory from
a registry and shard servers running in the same namespace."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netns.harness import Network, spawn_ready, spawn_script, wait_until

pytestmark = pytest.mark.netns

TESTS = Path(__file__).resolve().parent.parent

# Runs inside the namespace: fake registry + three shard servers, one file and a directory.
BACKEND = textwrap.dedent(
    f"""
    import asyncio, hashlib, json, os, sys
    sys.path.insert(0, {str(TESTS)!r})
    from cdn_fixtures import FakeRedis, Registry, upload
    from mycelium.cdn import meta

    async def main():
        registry = Registry()
        await registry.start()
        servers = [FakeRedis() for _ in range(3)]
        for s in servers:
            await s.start()
        content = os.urandom(300_000)
        file = upload(content, servers, k=2, chunk=100_000, name="data.bin", mime="image/png")
        digest, key = registry.publish(file)
        folder = registry.publish(meta.Directory(((digest, key),), "folder"), encrypt=False)
        print(json.dumps({{
            "registry": registry.host, "digest": digest.hex(), "key": key.hex(),
            "sha256": hashlib.sha256(content).hexdigest(), "folder": folder[0].hex(),
        }}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)

CLIENT = textwrap.dedent(
    """
    import hashlib, sys, urllib.request
    url = "http://localhost/" + sys.argv[2]
    request = urllib.request.Request(url, headers={"Host": sys.argv[1]})
    with urllib.request.urlopen(request, timeout=20) as reply:
        body = reply.read()
        print(reply.status, reply.headers["Content-Type"], hashlib.sha256(body).hexdigest())
        if reply.headers["Content-Type"].startswith("text/html"):
            print(body.decode())
    """
)


def test_cdn_gateway_serves_files_and_directories(net: Network, tmp_path: Path) -> None:
    ns = net.ns("cdn")
    backend, first = spawn_script(ns, BACKEND)
    try:
        info = json.loads(first)
        cache = tmp_path / "cdn-cache"
        node = net.start_node(
            ns, [], "--no-tun", "--disable-peer-discovery", "--cdn-cache", str(cache)
        )

        def fetch(host: str, query: str = "") -> list[str] | None:
            out = net.exec(ns, sys.executable, "-c", CLIENT, host, query, check=False)
            return out.stdout.split("\n") if out.returncode == 0 else None

        file_host = f"{info['digest']}.{info['registry']}"
        first = wait_until(lambda: fetch(file_host, f"?key={info['key']}"), timeout=20)
        assert first is not None, node.log()
        assert first[0] == f"200 image/png {info['sha256']}"
        assert len(list(cache.iterdir())) == 3  # three blocks, cached decrypted
        listing = fetch(f"{info['folder']}.{info['registry']}")
        assert listing is not None and listing[0].startswith("200 text/html")
        page = "\n".join(listing[1:])
        assert f'href="http://{file_host}/?key={info["key"]}">data.bin</a>' in page
    finally:
        backend.kill()
        backend.wait()


def test_cdn_gateway_that_cannot_bind_stops_the_node(net: Network, tmp_path: Path) -> None:
    ns = net.ns("cdnbusy")
    blocker = spawn_ready(
        ns,
        "import socket,time\n"
        "for fam, host in ((socket.AF_INET6, '::1'), (socket.AF_INET, '127.0.0.1')):\n"
        "    s = socket.socket(fam); s.bind((host, 80)); s.listen(); globals()[host] = s\n"
        "print('ready', flush=True); time.sleep(60)",
    )
    try:
        node = net.start_node(ns, [], "--no-tun", "--cdn-cache", str(tmp_path / "c"))
        assert node.proc is not None
        started = time.monotonic()
        code = node.proc.wait(timeout=20)
        output = node.log()
        assert code != 0 and time.monotonic() - started < 20
        assert "CDN gateway" in output and "Traceback" not in output, output
    finally:
        blocker.kill()
        blocker.wait()
