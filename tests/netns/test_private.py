"""A private network of real ``mycelium-private`` nodes: members route to each other over
TLS-PSK; a node with the wrong key or name, and a plain node, never get in."""

from __future__ import annotations

import shutil

import pytest

from netns.harness import Network, NodeProcess

pytestmark = pytest.mark.netns

PRIVATE = shutil.which("mycelium-private") or "mycelium-private"


def start(
    net: Network,
    ns: str,
    peers: list[str],
    name: str | None,
    key_file: str | None,
) -> NodeProcess:
    extra = ["--disable-peer-discovery"]
    if name is None:
        return net.start_node(ns, peers, *extra)
    return net.start_node(
        ns,
        peers,
        *extra,
        "--network-name",
        name,
        "--network-key-file",
        key_file or "",
        binary=PRIVATE,
    )


def test_members_route_and_outsiders_are_refused(net: Network) -> None:
    key, wrong = net.workdir / "net.key", net.workdir / "wrong.key"
    key.write_bytes(bytes(range(32)))
    wrong.write_bytes(bytes(range(1, 33)))
    hub = net.ns("p0")
    others = [net.ns(f"p{i}") for i in range(1, 6)]
    addresses = [net.link(hub, ns)[2] for ns in others]
    peer = [f"tcp://[{a}]:9651" for a in addresses]  # tcp:// is upgraded to TLS when private
    nodes = [start(net, hub, [], "lab", str(key))]
    nodes.append(start(net, others[0], [peer[0]], "lab", str(key)))
    nodes.append(start(net, others[1], [peer[1]], "lab", str(key)))
    intruders = [
        start(net, others[2], [peer[2]], "lab", str(wrong)),  # wrong key
        start(net, others[3], [peer[3]], "other", str(key)),  # wrong name
        start(net, others[4], [peer[4]], None, None),  # a plain node
    ]
    for node in nodes + intruders:
        net.wait_tun(node)
    net.wait_ping(nodes[1].ns, nodes[2].address, timeout=30)
    net.wait_ping(nodes[2].ns, nodes[0].address, timeout=10)
    for intruder in intruders:
        assert not net.ping(intruder.ns, nodes[0].address, count=2, wait=2), intruder.ns
        assert not net.ping(nodes[1].ns, intruder.address, count=1, wait=2), intruder.ns
    assert "Traceback" not in nodes[0].log()


def test_private_flags_are_validated(net: Network) -> None:
    ns = net.ns("pv")
    short = net.workdir / "short.key"
    short.write_bytes(b"\x00" * 31)
    key = net.workdir / "ok.key"
    key.write_bytes(b"\x01" * 32)
    for args, message in (
        (["--network-name", "x", "--network-key-file", str(key)], "2 to 64 bytes"),
        (["--network-name", "lab", "--network-key-file", str(short)], "31 bytes"),
        (["--network-name", "lab"], "both required"),
    ):
        out = net.exec(ns, PRIVATE, "-k", str(net.workdir / "k"), "--no-tun", *args, check=False)
        assert out.returncode != 0 and message in out.stderr, out.stderr
    plain = net.exec(
        ns,
        "mycelium",
        "-k",
        str(net.workdir / "k"),
        "--no-tun",
        "--network-name",
        "lab",
        "--network-key-file",
        str(key),
        check=False,
    )
    assert plain.returncode != 0 and "mycelium-private" in plain.stderr
