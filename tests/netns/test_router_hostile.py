"""A hostile neighbour against the router's limits, on a real node (routing/limits.py):
a flood of routes stops at the per-peer limit and is not re-flooded beyond it, and a flood of
wildcard route requests from a peer that never reads grows neither memory nor API latency."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from netns.harness import Network, NodeProcess, overlay_route_table, spawn_ready, wait_until

pytestmark = pytest.mark.netns

# Runs in the attacker's namespace: "routes N" announces N distinct /64s (random keys, so every
# Update passes the key-address check) and then reads and discards; "dumps N" sends N wildcard
# route requests and never reads a byte.
ATTACKER = textwrap.dedent(
    """
    import os, socket, sys, time
    from mycelium.identity import RouterId, node_subnet
    from mycelium.wire.packet import encode_control
    from mycelium.wire.tlv import RouteRequest, Update

    host, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = socket.create_connection((host, 9651), timeout=10)
    if mode == "routes":
        frames = []
        for _ in range(count):
            rid = RouterId.generate(os.urandom(32), os.urandom(6))
            frames.append(encode_control(Update(node_subnet(rid.public_key), 0, 0, rid, 30000)))
        s.sendall(b"".join(frames))
    else:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(encode_control(RouteRequest(None, 0)) * count)
    print("ready", flush=True)
    end = time.time() + 120
    while time.time() < end:
        if mode == "routes":
            s.settimeout(1)
            try:
                if not s.recv(65536):
                    break
            except OSError:
                pass
        else:
            time.sleep(1)
    """
)

API_LATENCY = textwrap.dedent(
    """
    import time, urllib.request
    start = time.monotonic()
    urllib.request.urlopen("http://127.0.0.1:8989/api/v1/admin", timeout=10).read()
    print(time.monotonic() - start)
    """
)


def rss_mb(node: NodeProcess) -> float:
    assert node.proc is not None
    with open(f"/proc/{node.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_route_and_dump_floods_stop_at_the_limits(net: Network) -> None:
    victim_ns, witness_ns, attacker_ns = net.ns("rv"), net.ns("rw"), net.ns("rx")
    _, _, v_addr, _ = net.link(victim_ns, witness_ns)
    _, _, v_addr_x, _ = net.link(victim_ns, attacker_ns)
    limit = 20_000
    victim = net.start_node(
        victim_ns, [], "--disable-peer-discovery", "--max-routes-per-peer", str(limit)
    )
    witness = net.start_node(witness_ns, [f"tcp://[{v_addr}]:9651"], "--disable-peer-discovery")
    net.wait_tun(victim)
    net.wait_tun(witness)
    net.wait_ping(witness_ns, victim.address, timeout=30)

    flood = spawn_ready(attacker_ns, ATTACKER, v_addr_x, "routes", str(limit + 5_000))
    try:
        # The victim takes the peer's share and no more; the witness hears no more than that.
        def settled() -> int | None:
            seen = len(overlay_route_table(net, witness))
            return seen if seen >= limit else None

        assert wait_until(settled, timeout=60, interval=2), witness.log()
        time.sleep(3)
        assert limit <= len(overlay_route_table(net, victim)) <= limit + 1
        assert limit <= len(overlay_route_table(net, witness)) <= limit + 1

        before = rss_mb(victim)
        dumps = spawn_ready(attacker_ns, ATTACKER, v_addr_x, "dumps", "120")
        try:
            latencies = []
            for _ in range(10):
                out = net.exec(
                    victim_ns, sys.executable, "-c", API_LATENCY, timeout=30, check=False
                )
                latencies.append(float(out.stdout) if out.returncode == 0 else float("inf"))
                time.sleep(1)
            grown = rss_mb(victim) - before
        finally:
            dumps.kill()
            dumps.wait()
    finally:
        flood.kill()
        flood.wait()
    # One dump of 20 000 routes is ~1.5 MB on the wire; 120 of them would be ~180 MB queued.
    assert grown < 40, f"RSS grew {grown:.0f} MB"
    assert max(latencies) < 2.0, latencies  # without the limit: no answer within 10 s
    assert victim.proc is not None and victim.proc.poll() is None, victim.log()
    assert "Traceback" not in victim.log()
