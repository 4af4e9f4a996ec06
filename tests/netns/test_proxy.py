"""SOCKS5 proxy discovery and forwarding on real nodes (extras.md §1.6): A probes the overlay,
finds B's open SOCKS5 server but not C's authenticated one, and forwards [::1]:1080 to B."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from netns.harness import MYCELIUM, Network, NodeProcess, wait_until

pytestmark = pytest.mark.netns

# A SOCKS5 server (CONNECT only; no authentication, or only user/password with "auth") plus an
# echo server on port 7000 of the same address.
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
        await asyncio.start_server(socks, address, 1080)
        await asyncio.start_server(echo, address, 7000)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)

CLIENT = textwrap.dedent(
    """
    import socket, struct, sys
    s = socket.create_connection(("::1", 1080), timeout=10)
    s.sendall(b"\\x05\\x01\\x00")
    assert s.recv(2) == b"\\x05\\x00"
    s.sendall(b"\\x05\\x01\\x00\\x04" + socket.inet_pton(socket.AF_INET6, sys.argv[1])
              + struct.pack("!H", 7000))
    reply = b""
    while len(reply) < 22:
        reply += s.recv(22 - len(reply))
    assert reply[:2] == b"\\x05\\x00", reply
    s.sendall(b"hello over the overlay")
    got = b""
    while len(got) < 22:
        got += s.recv(64)
    print(got.decode())
    """
)


def cli(net: Network, node: NodeProcess, *args: str) -> subprocess.CompletedProcess:
    return net.exec(node.ns, MYCELIUM, *args, check=False)


def test_probe_list_connect_forward_disconnect(net: Network) -> None:
    names = [net.ns(n) for n in ("pxa", "pxb", "pxc")]
    _, _, ab_left, _ = net.link(names[0], names[1])
    _, _, bc_left, _ = net.link(names[1], names[2])
    a = net.start_node(names[0], [], "--disable-peer-discovery")
    b = net.start_node(names[1], [f"tcp://[{ab_left}]:9651"], "--disable-peer-discovery")
    c = net.start_node(names[2], [f"tcp://[{bc_left}]:9651"], "--disable-peer-discovery")
    for node in (a, b, c):
        net.wait_tun(node)
    net.wait_ping(a.ns, c.address, timeout=30)
    servers = []
    try:
        for node, mode in ((b, "open"), (c, "auth")):
            p = subprocess.Popen(
                ["ip", "netns", "exec", node.ns, sys.executable, "-c", SERVERS, node.address, mode],
                stdout=subprocess.PIPE,
                text=True,
            )
            servers.append(p)
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"

        assert json.loads(cli(net, a, "proxy", "list", "--json").stdout) == []
        failed = cli(net, a, "proxy", "connect")
        assert failed.returncode != 0 and "No valid proxy" in failed.stderr + failed.stdout
        assert cli(net, a, "proxy", "probe", "start").returncode == 0
        found = wait_until(
            lambda: json.loads(cli(net, a, "proxy", "list", "--json").stdout or "[]"), timeout=15
        )
        assert found == [b.address], a.log()

        connected = cli(net, a, "proxy", "connect", "--json")
        assert json.loads(connected.stdout) == f"[{b.address}]:1080", connected.stderr
        # A SOCKS client on A talks to B's server through the forwarding, to B's echo port.
        echoed = net.exec(a.ns, sys.executable, "-c", CLIENT, b.address, timeout=30)
        assert echoed.stdout.strip() == "hello over the overlay"

        assert cli(net, a, "proxy", "disconnect").returncode == 0
        refused = net.exec(a.ns, sys.executable, "-c", CLIENT, b.address, check=False)
        assert refused.returncode != 0 and "ConnectionRefused" in refused.stderr
        # Probing survives a disconnect, and stops on request.
        assert json.loads(cli(net, a, "proxy", "list", "--json").stdout) == [b.address]
        assert cli(net, a, "proxy", "probe", "stop").returncode == 0
    finally:
        for p in servers:
            p.kill()
            p.wait()
