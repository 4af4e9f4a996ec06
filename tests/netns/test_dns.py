"""``--enable-dns`` on real nodes: queries to [::1]:53 answered by a resolver on another node's
overlay address, the public nodes looked up at start, SERVFAIL when nothing answers, and a taken
port 53 stopping the start."""

from __future__ import annotations

import ipaddress
import json
import struct
import sys
import textwrap
import time

import pytest

from mycelium.dns.upstream import PUBLIC_NODES
from mycelium.identity import Identity
from mycelium.subnet import Subnet
from netns.harness import Network, spawn_ready, wait_until

pytestmark = pytest.mark.netns

# A resolver that answers every query with its own header flags set and a marker appended.
RESOLVER = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 53))
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(4096)
        s.sendto(data[:2] + b"\\x81\\x80" + data[4:] + b"from-the-overlay", addr)
    """
)

ASK = textwrap.dedent(
    """
    import socket, struct, sys
    q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    q += b"\\x07example\\x03com\\x00\\x00\\x1c\\x00\\x01"
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.settimeout(float(sys.argv[1]))
    s.sendto(q, ("::1", 53))
    print(s.recvfrom(4096)[0].hex())
    """
)


def ask(net: Network, ns: str, timeout: float = 8.0) -> bytes | None:
    out = net.exec(ns, sys.executable, "-c", ASK, str(timeout), check=False, timeout=timeout + 10)
    return bytes.fromhex(out.stdout.strip()) if out.returncode == 0 else None


def test_queries_are_answered_by_an_overlay_resolver(net: Network) -> None:
    a, b = net.ns("dnsa"), net.ns("dnsb")
    _, _, addr_a, _ = net.link(a, b)
    id_b = Identity.generate()
    b_address = str(ipaddress.IPv6Address(id_b.address))
    na = net.start_node(
        a, [], "--disable-peer-discovery", "--enable-dns", "--dns-upstream", b_address
    )
    nb = net.start_node(b, [f"tcp://[{addr_a}]:9651"], "--disable-peer-discovery", identity=id_b)
    net.wait_tun(na)
    net.wait_tun(nb)
    resolver = spawn_ready(b, RESOLVER, b_address)
    try:
        net.wait_ping(a, b_address, timeout=30)
        # The choice made at start may have found no route (fallback 1.1.1.1: SERVFAIL here);
        # a query on the fallback looks again, so B is picked as soon as its route is known.
        reply = wait_until(
            lambda: (
                (r := ask(net, a, timeout=6)) is not None and r.endswith(b"from-the-overlay") and r
            ),
            timeout=50,
            interval=1,
        )
        assert reply, na.log()
        assert struct.unpack("!HH", reply[:4]) == (0x4242, 0x8180)
    finally:
        resolver.kill()
        resolver.wait()


def test_a_lone_node_looks_up_the_public_nodes_and_answers_servfail(net: Network) -> None:
    ns = net.ns("dnslone")
    node = net.start_node(ns, [], "--no-tun", "--disable-peer-discovery", "--enable-dns")
    net.wait_listening(node)
    wanted = {str(Subnet.of(a, 64)) for a in PUBLIC_NODES}
    queried = wait_until(lambda: wanted <= queried_subnets(net, ns), timeout=10)
    assert queried, (queried_subnets(net, ns), node.log())
    started = time.monotonic()
    reply = ask(net, ns, timeout=10)
    assert reply is not None and reply[:2] == b"\x42\x42" and reply[3] & 0xF == 2  # SERVFAIL
    assert time.monotonic() - started < 8


def test_a_taken_port_53_stops_the_start(net: Network) -> None:
    ns = net.ns("dnsbusy")
    blocker = spawn_ready(
        ns,
        "import socket,time\ns=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n"
        "s.bind(('::',53)); print('ready', flush=True); time.sleep(60)",
    )
    try:
        node = net.start_node(ns, [], "--no-tun", "--enable-dns")
        assert node.proc is not None
        assert node.proc.wait(timeout=20) != 0
        output = node.log()
        assert "DNS resolver cannot listen on [::]:53" in output and "Traceback" not in output
    finally:
        blocker.kill()
        blocker.wait()


def queried_subnets(net: Network, ns: str) -> set[str]:
    out = net.exec(
        ns,
        sys.executable,
        "-c",
        "import json,urllib.request;print(urllib.request.urlopen("
        "'http://127.0.0.1:8989/api/v1/admin/routes/queried',timeout=2).read().decode())",
        check=False,
    )
    try:
        return {entry["subnet"] for entry in json.loads(out.stdout)}
    except ValueError:
        return set()
