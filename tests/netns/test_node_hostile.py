"""Hostile bytes on a node's TCP port never crash it and never stall its other links."""

from __future__ import annotations

import sys
import textwrap

import pytest

from netns.harness import Network

pytestmark = pytest.mark.netns

# Runs in the attacker's namespace: every attack on its own connection, then a valid Hello after
# bad control packets, which must still be answered with an IHU (the stream stays in sync).
ATTACKER = textwrap.dedent(
    """
    import os, socket, struct, sys, time
    from mycelium.wire.packet import encode_control
    from mycelium.wire.stream import StreamDecoder
    from mycelium.wire.tlv import Hello, Ihu

    host = sys.argv[1]

    def conn():
        s = socket.create_connection((host, 9651), timeout=5)
        return s

    def control(tlv_type, value, declared=None):
        tlv = bytes([tlv_type, len(value) if declared is None else declared]) + value
        return b"\\x01\\x01\\x00\\x00" + struct.pack("!BBH", 42, 3, len(tlv)) + tlv

    attacks = {
        "garbage": os.urandom(1 << 16),
        "truncated": b"\\x01\\x01\\x00\\x00\\x2a\\x03\\x00\\x40" + b"\\x08\\x3a\\x02",
        "oversize-data": b"\\x01\\x00\\xff\\xff" + os.urandom(100),
        "bad-outer": b"\\x07\\x09\\x00\\x00" * 50,
        "huge-babel-length": b"\\x01\\x01\\x00\\x00\\x2a\\x03\\xff\\xff" + os.urandom(3000),
    }
    for name, payload in attacks.items():
        s = conn()
        try:
            s.sendall(payload)
            time.sleep(0.2)
        except OSError:
            pass
        s.close()

    # Slow, half-open connections hold nothing up.
    idle = [conn() for _ in range(30)]
    for s in idle:
        s.sendall(b"\\x01\\x00")

    s = conn()
    bad = [
        control(99, b"\\x00" * 10),                         # unknown TLV type
        control(5, b"\\x07\\x00\\x00\\x00\\x17\\x70"),       # IHU with unknown AE
        control(9, b"\\x00\\x04\\x40" + b"\\x00" * 8),      # route request with AE 4
        control(10, b"\\x02\\x40\\x00\\x01\\x00\\x00" + b"\\x00" * 48),  # SNR hop count 0
        control(8, b"\\x02\\x00\\x40\\x00", declared=200),  # Update shorter than its fields
    ]
    s.sendall(b"".join(bad) + encode_control(Hello(0)))
    decoder = StreamDecoder()
    got_ihu = False
    deadline = time.time() + 5
    while time.time() < deadline and not got_ihu:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        got_ihu = any(isinstance(p, Ihu) for p in decoder.feed(data))
    print("ihu" if got_ihu else "no-ihu", flush=True)
    for c in idle:
        c.close()
    """
)


def test_hostile_input_neither_crashes_the_node_nor_stalls_other_links(net: Network) -> None:
    names = [net.ns(f"h{i}") for i in range(3)]
    attacker = net.ns("hx")
    _, _, left01, _ = net.link(names[0], names[1])
    _, _, left12, _ = net.link(names[1], names[2])
    _, _, victim, _ = net.link(names[1], attacker)
    n0 = net.start_node(names[0], [], "--disable-peer-discovery")
    n1 = net.start_node(names[1], [f"tcp://[{left01}]:9651"], "--disable-peer-discovery")
    n2 = net.start_node(names[2], [f"tcp://[{left12}]:9651"], "--disable-peer-discovery")
    for node in (n0, n1, n2):
        net.wait_tun(node)
    net.wait_ping(names[0], n2.address, timeout=30)

    out = net.exec(attacker, sys.executable, "-c", ATTACKER, victim, timeout=60)
    assert out.stdout.strip() == "ihu", out.stdout + out.stderr

    assert n1.proc is not None and n1.proc.poll() is None, n1.log()
    assert net.ping(names[0], n2.address, count=3, wait=2)
    assert "Traceback" not in n1.log()
