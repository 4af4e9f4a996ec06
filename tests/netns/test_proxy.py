"""SOCKS5 proxy discovery and forwarding on real nodes, the checklist of docs/extras.md §1.6.

A star around B: B runs an open SOCKS5 server on its overlay address, C one that wants a
password, D an echo server on port 1080. A probes through its TUN, lists only B, and forwards
its port 1080 to B; a SOCKS client on A reaches B's echo port through it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from netns.harness import MYCELIUM, Network, NodeProcess, spawn_ready, wait_until

pytestmark = pytest.mark.netns

# Port 1080 by mode: "open" SOCKS5 (CONNECT to IPv6 only), "auth" (refuses method 0), "echo";
# always an echo server on port 7000 of the same address.
SERVERS = textwrap.dedent(
    """
    import asyncio, socket, struct, sys
    address, mode = sys.argv[1], sys.argv[2]

    async def pipe(r, w):
        try:
            while data := await r.read(65536):
                w.write(data); await w.drain()
        finally:
            w.close()

    async def socks(r, w):
        try:
            await handshake(r, w)
        except (OSError, asyncio.IncompleteReadError):  # a probe hangs up after 2 bytes
            w.close()

    async def handshake(r, w):
        _, methods = await r.readexactly(2)
        await r.readexactly(methods)
        if mode == "auth":
            w.write(b"\\x05\\xff"); await w.drain(); w.close(); return
        w.write(b"\\x05\\x00")
        ver, cmd, _, atyp = await r.readexactly(4)
        host = socket.inet_ntop(socket.AF_INET6, await r.readexactly(16))
        (port,) = struct.unpack("!H", await r.readexactly(2))
        tr, tw = await asyncio.open_connection(host, port)
        w.write(b"\\x05\\x00\\x00\\x04" + bytes(16) + b"\\x00\\x00")
        await asyncio.gather(pipe(r, tw), pipe(tr, w))

    async def echo(r, w):
        await pipe(r, w)

    async def main():
        await asyncio.start_server(echo if mode == "echo" else socks, address, 1080)
        await asyncio.start_server(echo, address, 7000)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)

# A SOCKS5 client of host:1080 asking for [target]:7000; with "hold" it keeps the stream open
# and reports how it ended.
CLIENT = textwrap.dedent(
    """
    import socket, struct, sys
    host, target, hold = sys.argv[1], sys.argv[2], sys.argv[3:] == ["hold"]
    s = socket.create_connection((host, 1080), timeout=10)
    s.sendall(b"\\x05\\x01\\x00")
    assert s.recv(2) == b"\\x05\\x00"
    s.sendall(b"\\x05\\x01\\x00\\x04" + socket.inet_pton(socket.AF_INET6, target)
              + struct.pack("!H", 7000))
    reply = b""
    while len(reply) < 22:
        reply += s.recv(22 - len(reply))
    assert reply[:2] == b"\\x05\\x00", reply
    s.sendall(b"hello over the overlay")
    got = b""
    while len(got) < 22:
        got += s.recv(64)
    print(got.decode(), flush=True)
    if hold:
        try:
            print("closed" if s.recv(1) == b"" else "data", flush=True)
        except OSError as exc:
            print(type(exc).__name__, flush=True)
    """
)

HTTP = textwrap.dedent(
    """
    import sys, urllib.error, urllib.request
    method, url, body = sys.argv[1:]
    request = urllib.request.Request(url, data=body.encode() or None, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as r:
            print(r.status); print(r.read().decode())
    except urllib.error.HTTPError as e:
        print(e.code); print(e.read().decode())
    """
)

REST_PROXY = "http://127.0.0.1:8989/api/v1/admin/proxy"

BLOCKER = textwrap.dedent(
    """
    import socket, time
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the forwarder's TIME_WAITs
    s.bind(("::", 1080)); s.listen()
    print("ready", flush=True)
    time.sleep(60)
    """
)


class Proxying:
    """Talks to node A's proxy through its CLI, REST and JSON-RPC, from inside A's namespace."""

    def __init__(self, net: Network, a: NodeProcess) -> None:
        self.net, self.a = net, a
        self.spawned: list[subprocess.Popen] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return self.net.exec(self.a.ns, MYCELIUM, "proxy", *args, check=False)

    def listed(self) -> list[str]:
        return sorted(json.loads(self.cli("list", "--json").stdout or "[]"))

    def http(self, method: str, body: str = "", url: str = REST_PROXY) -> tuple[int, str]:
        out = self.net.exec(self.a.ns, sys.executable, "-c", HTTP, method, url, body).stdout
        status, _, text = out.partition("\n")
        return int(status), text.strip()

    def rpc_connect(self) -> dict:
        call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "connectProxy", "params": []})
        status, text = self.http("POST", call, url="http://127.0.0.1:8990/")
        assert status == 200, text
        return json.loads(text)  # type: ignore[no-any-return]

    def spawn(self, ns: str, script: str, *args: str, ready: str = "ready") -> subprocess.Popen:
        """A helper process, once its first line of output says it is ready."""
        p = spawn_ready(ns, script, *args, ready=ready)
        self.spawned.append(p)
        return p

    def hold(self, target: str) -> subprocess.Popen:
        """A client stream through the forwarding, left open."""
        return self.spawn(self.a.ns, CLIENT, "::1", target, "hold", ready="hello over the overlay")

    def client(self, target: str, host: str = "::1") -> subprocess.CompletedProcess:
        return self.net.exec(self.a.ns, sys.executable, "-c", CLIENT, host, target, check=False)

    def close(self) -> None:
        for p in self.spawned:
            p.kill()
            p.wait()


def ending(p: subprocess.Popen) -> str:
    """How a held client stream ended."""
    out, _ = p.communicate(timeout=15)
    return out.strip()


def test_probe_list_connect_forward_disconnect(net: Network) -> None:
    names = [net.ns(n) for n in ("pxa", "pxb", "pxc", "pxd")]
    _, _, ab_left, _ = net.link(names[0], names[1])
    _, _, bc_left, _ = net.link(names[1], names[2])
    _, _, bd_left, _ = net.link(names[1], names[3])
    quiet = "--disable-peer-discovery"
    a = net.start_node(names[0], [], quiet)
    b = net.start_node(names[1], [f"tcp://[{ab_left}]:9651"], quiet)
    c = net.start_node(names[2], [f"tcp://[{bc_left}]:9651"], quiet)
    d = net.start_node(names[3], [f"tcp://[{bd_left}]:9651"], quiet)
    for node in (a, b, c, d):
        net.wait_tun(node)
    for far in (c, d):
        net.wait_ping(a.ns, far.address, timeout=30)
    px = Proxying(net, a)
    try:
        px.spawn(b.ns, SERVERS, b.address, "open")
        c_server = px.spawn(c.ns, SERVERS, c.address, "auth")
        px.spawn(d.ns, SERVERS, d.address, "echo")

        # 1. Probing is off at start; 5. with nothing discovered a connect fails everywhere.
        assert px.http("GET") == (200, "[]")
        assert px.http("POST", "{}") == (404, "")
        assert px.rpc_connect()["error"]["code"] == -32032
        failed = px.cli("connect")
        assert failed.returncode != 0 and "No valid proxy" in failed.stderr + failed.stdout
        # 6. A given remote is accepted as is, without probing.
        assert px.http("POST", '{"remote": "[407::1]:9999"}') == (200, '"[407::1]:9999"')
        assert px.http("DELETE") == (204, "")

        # 2, 3. One round finds B; C (password) and D (echo) are not listed.
        assert px.cli("probe", "start").returncode == 0
        assert wait_until(px.listed, timeout=10) == [b.address], a.log()

        # 4. Auto-connect picks B; a SOCKS client on A reaches B's echo port through it, over
        # IPv6 and IPv4 alike (the listener on [::] is dual-stack).
        connected = px.cli("connect", "--json")
        assert json.loads(connected.stdout) == f"[{b.address}]:1080", connected.stderr
        for host in ("::1", "127.0.0.1"):
            echoed = px.client(b.address, host)
            assert echoed.stdout.strip() == "hello over the overlay", echoed.stderr
        # A reconnect replaces the session (old streams end, the port is rebound at once) and a
        # disconnect ends the open streams and the listener.
        held = px.hold(b.address)
        assert px.cli("connect").stdout.strip() == f"[{b.address}]:1080"
        assert ending(held) == "closed"
        held = px.hold(b.address)
        assert px.cli("disconnect").returncode == 0
        assert ending(held) == "closed"
        refused = px.client(b.address)
        assert refused.returncode != 0 and "ConnectionRefused" in refused.stderr

        # 5. A taken port 1080 fails a connect the same way as no proxy at all.
        blocker = px.spawn(a.ns, BLOCKER)
        assert px.http("POST", '{"remote": null}') == (404, "")
        failed = px.rpc_connect()["error"]
        assert (failed["code"], failed["message"]) == (-32032, "Server error"), failed
        blocker.kill()
        blocker.wait()

        # 7. Probing survived the disconnect; stop then start probes again: C, reopened
        # without a password, is found by the new first round.
        assert px.listed() == [b.address]
        assert px.cli("probe", "stop").returncode == 0
        c_server.kill()
        c_server.wait()
        px.spawn(c.ns, SERVERS, c.address, "open")
        assert px.cli("probe", "start").returncode == 0
        both = sorted([b.address, c.address])
        assert wait_until(lambda: px.listed() == both, timeout=10), (px.listed(), a.log())
    finally:
        px.close()
