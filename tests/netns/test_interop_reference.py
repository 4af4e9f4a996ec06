"""Mixed networks with the reference implementation (Rust, v0.7.10) on real namespaces.

Runs only when ``MYCELIUM_REFERENCE_BIN`` names a reference ``mycelium`` binary (built from
threefoldtech/mycelium's ``myceliumd``); otherwise every test is skipped with that reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from mycelium.identity import node_subnet
from netns.harness import MYCELIUM, Network, NodeProcess, overlay_route_table, tcp_transfer

pytestmark = pytest.mark.netns

REFERENCE = os.environ.get("MYCELIUM_REFERENCE_BIN", "")


@pytest.fixture(autouse=True)
def _reference_binary() -> None:
    if not (REFERENCE and os.access(REFERENCE, os.X_OK)):
        pytest.skip(
            "set MYCELIUM_REFERENCE_BIN to a reference mycelium binary to run interop tests"
        )


def chain(net: Network, kinds: str, proto: str = "tcp") -> list[NodeProcess]:
    """Nodes in a line; ``kinds`` has one letter per node: P (ours) or R (reference)."""
    names = [net.ns(f"i{i}") for i in range(len(kinds))]
    nodes = []
    for i, (ns, kind) in enumerate(zip(names, kinds, strict=True)):
        peers = []
        if i > 0:
            _, _, left, _ = net.link(names[i - 1], ns)
            peers = [f"{proto}://[{left}]:9651"]
        if kind == "R":
            nodes.append(net.start_node(ns, peers, "--disable-peer-discovery", binary=REFERENCE))
        else:
            nodes.append(net.start_node(ns, peers, "--disable-peer-discovery"))
    for node in nodes:
        net.wait_tun(node)
    return nodes


def test_python_and_reference_neighbours_ping_and_announce_metric_zero(net: Network) -> None:
    py, rust = chain(net, "PR")
    net.wait_ping(py.ns, rust.address, timeout=30)
    net.wait_ping(rust.ns, py.address, timeout=30)
    subnet = str(node_subnet(py.identity.public_key))
    routes = {r["subnet"]: r for r in overlay_route_table(net, rust)}
    assert routes[subnet]["metric"] == 0  # the reference's REST API, on by default


def test_reference_nodes_route_through_a_python_node_and_back(net: Network) -> None:
    r1, py, r2 = chain(net, "RPR")
    net.wait_ping(r1.ns, r2.address, timeout=40)
    net.wait_ping(r2.ns, r1.address, timeout=40)
    net.wait_ping(py.ns, r1.address, timeout=20)


def test_python_nodes_route_through_a_reference_node_and_links_stay_up(net: Network) -> None:
    p1, rust, p2 = chain(net, "PRP")
    net.wait_ping(p1.ns, p2.address, timeout=40)
    # Past the 43-53 s dead-neighbour window: Hellos and IHUs keep every link alive both ways.
    time.sleep(65)
    assert net.ping(p1.ns, p2.address, count=3, wait=2)
    assert net.ping(rust.ns, p1.address, count=2, wait=2)
    for node in (p1, rust, p2):
        assert node.proc is not None and node.proc.poll() is None, node.log()


def test_bulk_tcp_between_python_and_reference_nodes_arrives_intact(net: Network) -> None:
    """Segments a Rust node sealed are joined into GSO writes on our TUN; ours reach its TUN."""
    py, rust = chain(net, "PR")
    net.wait_ping(py.ns, rust.address, timeout=30)
    for src, dst in ((rust, py), (py, rust)):
        sent, received = tcp_transfer(net, src.ns, dst.ns, dst.address, 8 << 20)
        assert received == sent, f"{src.ns} -> {dst.ns}: bytes or checksum differ"


def _json_output(stdout: str) -> dict:
    """The JSON a CLI printed last: the reference's client also logs to stdout (e.g. "Using key
    file" whenever a default key file exists), so only the final line is the answer."""
    return json.loads(stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_messages_between_python_and_reference_nodes(net: Network) -> None:
    """The message bus both ways through each side's own CLI: small and 300 KB payloads, topics,
    and a request answered with a reply."""
    py, rust = chain(net, "PR")
    net.wait_ping(py.ns, rust.address, timeout=30)
    ours, theirs = (MYCELIUM, py), (REFERENCE, rust)

    def receive(side: tuple[str, NodeProcess], *args: str) -> subprocess.Popen[str]:
        binary, node = side
        return subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                node.ns,
                binary,
                "message",
                "receive",
                "--timeout",
                "30",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def send(side: tuple[str, NodeProcess], *args: str) -> str:
        binary, node = side
        return net.exec(node.ns, binary, "message", "send", *args, timeout=60).stdout

    for sender, receiver in ((theirs, ours), (ours, theirs)):
        dst = receiver[1].address
        listening = receive(receiver, "-t", "chat")
        time.sleep(0.5)
        send(sender, dst, f"hello from {sender[1].ns}", "-t", "chat")
        got = _json_output(listening.communicate(timeout=40)[0])
        assert got["payload"] == f"hello from {sender[1].ns}" and got["topic"] == "chat"
        assert got["srcIp"] == sender[1].address

        blob = os.urandom(300_000)
        source, sink = net.workdir / f"{sender[1].ns}.out", net.workdir / f"{receiver[1].ns}.in"
        source.write_bytes(blob)
        listening = receive(receiver, "--msg-path", str(sink))
        time.sleep(0.5)
        send(sender, dst, "--msg-path", str(source))
        listening.communicate(timeout=40)
        assert sink.read_bytes() == blob, f"{sender[1].ns} -> {receiver[1].ns}"

        # Request and reply: the sender waits, the receiver answers the message's id.
        listening = receive(receiver, "-t", "rpc")
        time.sleep(0.5)
        waiting = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                sender[1].ns,
                sender[0],
                "message",
                "send",
                "--wait",
                "--timeout",
                "30",
                "-t",
                "rpc",
                dst,
                "ping",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        request = _json_output(listening.communicate(timeout=40)[0])
        send(receiver, sender[1].address, "pong", "--reply-to", request["id"])
        reply = _json_output(waiting.communicate(timeout=40)[0])
        assert reply["payload"] == "pong" and reply["srcIp"] == dst, reply


def test_quic_links_between_python_and_reference_nodes(net: Network) -> None:
    # P dials R over QUIC, then R dials P: both directions of the handshake and both roles.
    p1, rust, p2 = chain(net, "PRP", proto="quic")
    net.wait_ping(p1.ns, rust.address, timeout=40)
    net.wait_ping(p1.ns, p2.address, timeout=40)
    net.wait_ping(rust.ns, p2.address, timeout=20)
    # Full-size packets from the Python side (1400-byte MTU) fit or go on the stream.
    assert net.ping(p1.ns, p2.address, count=2, wait=3)
    out = net.exec(
        p1.ns, "ping", "-6", "-c", "2", "-W", "3", "-s", "1300", rust.address, check=False
    )
    assert out.returncode == 0, out.stdout


REFERENCE_PRIVATE = os.environ.get("MYCELIUM_REFERENCE_PRIVATE_BIN", "")


def test_private_network_with_reference_members(net: Network) -> None:
    """P - R - P over TLS-PSK: our TLS client and server against the reference's OpenSSL."""
    if not (REFERENCE_PRIVATE and os.access(REFERENCE_PRIVATE, os.X_OK)):
        pytest.skip("set MYCELIUM_REFERENCE_PRIVATE_BIN to a reference mycelium-private binary")
    import shutil

    ours = shutil.which("mycelium-private") or "mycelium-private"
    key = net.workdir / "net.key"
    key.write_bytes(bytes(range(32)))
    private = [
        "--disable-peer-discovery",
        "--network-name",
        "interop",
        "--network-key-file",
        str(key),
    ]
    names = [net.ns(f"v{i}") for i in range(3)]
    _, _, left01, _ = net.link(names[0], names[1])
    _, _, left12, _ = net.link(names[1], names[2])
    p1 = net.start_node(names[0], [], *private, binary=ours)
    rust = net.start_node(names[1], [f"tcp://[{left01}]:9651"], *private, binary=REFERENCE_PRIVATE)
    p2 = net.start_node(names[2], [f"tcp://[{left12}]:9651"], *private, binary=ours)
    for node in (p1, rust, p2):
        net.wait_tun(node)
    net.wait_ping(p1.ns, rust.address, timeout=40)
    net.wait_ping(p2.ns, p1.address, timeout=40)
    assert net.ping(rust.ns, p2.address, count=2, wait=2)


def test_bulk_tcp_both_ways_over_quic_links_arrives_intact(net: Network) -> None:
    """Our full-size packets reach the reference on the QUIC stream; its packets reach us as
    DATAGRAMs. (The reference cannot send a 1400-byte packet over QUIC itself: it logs "datagram
    too large" and drops the connection, so its side of the transfer is held to packets that fit
    a DATAGRAM with a route MTU of 1350 towards us.)"""
    py, rust = chain(net, "PR", proto="quic")
    net.wait_ping(py.ns, rust.address, timeout=40)
    net.exec(
        rust.ns, "ip", "-6", "route", "add", f"{py.address}/128", "dev", "mycelium", "mtu", "1350"
    )
    for src, dst in ((py, rust), (rust, py)):
        sent, received = tcp_transfer(net, src.ns, dst.ns, dst.address, 8 << 20)
        assert received == sent, f"{src.ns} -> {dst.ns}: bytes or checksum differ"
