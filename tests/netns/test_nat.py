"""NAT traversal on real namespaces (docs/nat.md), in the lab of ``netns/nat_lab.py``: two
LANs behind nftables masquerade routers around a public node (the reference binary when
MYCELIUM_REFERENCE_BIN is set, ours otherwise). The NATs forget idle UDP mappings after 30 s, so
a punched link that survives a minute of idle does so by its keepalives.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Iterator

import pytest

from mycelium.cli.status import render_status
from netns.harness import Network, NodeProcess
from netns.nat_lab import (
    DIRECT_TTL,
    NAT_A,
    NAT_B,
    REFERENCE,
    RELAYED_TTL,
    Lab,
    build_lab,
    ping_stream,
    punched,
    wait_mapping,
)

pytestmark = pytest.mark.netns


@pytest.fixture
def lab(net: Network, request: pytest.FixtureRequest) -> Iterator[Lab]:
    for tool in ("nft", "ping"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.skip(f"needs {tool} (apt install nftables iputils-ping)")
    lab = build_lab(net, symmetric_a=getattr(request, "param", False))
    try:
        yield lab
    finally:
        if lab.stun is not None:
            lab.stun.kill()
            lab.stun.wait()


def quiet(node: NodeProcess) -> list[str]:
    """Log lines of NAT traversal above debug level, and any error at all."""
    text = node.log_file.read_text(errors="replace")
    return [
        line
        for line in text.splitlines()
        if ("mycelium.nat" in line and " DEBUG " not in line)
        or "Traceback" in line
        or " ERROR " in line
        or " WARNING " in line
    ]


def test_two_nodes_behind_nats_get_a_direct_link_that_survives_idle(lab: Lab) -> None:
    a, b = lab.nodes(("a", "10.0.1.2"), ("b", "10.0.2.2"))
    status_a, status_b = wait_mapping(lab, a), wait_mapping(lab, b)
    assert status_a["natType"] == status_b["natType"] == "endpointIndependent"
    assert status_a["publicAddresses"] == [f"{NAT_A}:9651"]
    assert {"kind": "host", "address": "10.0.1.2:9651"} in status_a["candidates"]

    # Traffic starts: pings through the relay, then (once punched) directly. Every 20 ms, so
    # that the relayed round trips before the punch are a sample too.
    started = time.time()
    replies = ping_stream(a.ns, b.address, count=500, interval=0.02)
    direct = [r for r in replies if r.ttl == DIRECT_TTL]
    relayed = [r for r in replies if r.ttl == RELAYED_TTL]
    assert direct, f"no reply over a direct link:\n{a.log()}\n{b.log()}"
    to_direct = direct[0].at - started
    assert to_direct < 60
    assert all(r.ttl == DIRECT_TTL for r in replies[replies.index(direct[0]) :])  # no flapping

    (on_a,), (on_b,) = punched(lab, a), punched(lab, b)
    # Each holds the other's NATed endpoint.
    assert on_a["endpoint"] == {"proto": "quic", "addr": {"socket": f"{NAT_B}:9651"}}
    assert on_b["endpoint"] == {"proto": "quic", "addr": {"socket": f"{NAT_A}:9651"}}
    status = lab.api(a, "/pymycelium/status")
    assert isinstance(status, dict), status
    assert status["nat"]["directLinks"] == 1
    assert f"NAT:         endpointIndependent, public {NAT_A}:9651, 1 direct link" in (
        render_status(status).splitlines()
    )
    routes = {r["subnet"]: r for r in lab.api(a, "/admin/routes/selected") or []}  # type: ignore[union-attr]
    subnet_b = next(s for s in routes if b.address.startswith(s.split("::")[0] + ":"))
    # (QUIC links name IPv4 peers in the dual-stack socket's mapped form.)
    assert routes[subnet_b]["nextHop"] == f"QUIC -> [::ffff:{NAT_B}]:9651"
    lossless = ping_stream(a.ns, b.address, count=100, interval=0.02)
    assert len(lossless) == 100 and {r.ttl for r in lossless} == {DIRECT_TTL}

    # A minute of silence (the NATs forget mappings idle for 30 s): the link holds.
    rx_before = on_a["rxBytes"]
    time.sleep(65)
    (still,) = punched(lab, a)
    assert still["endpoint"] == on_a["endpoint"] and still["connectionState"] == "alive"
    assert still["rxBytes"] > rx_before  # Hellos and IHUs kept flowing
    after = ping_stream(a.ns, b.address, count=10, interval=0.1)
    assert len(after) == 10 and {r.ttl for r in after} == {DIRECT_TTL}
    for node in (a, b):
        assert [line for line in quiet(node) if "ERROR" in line or "Traceback" in line] == []

    print(
        f"\nNAT traversal (relay: {'reference' if REFERENCE else 'pymycelium'}): direct link "
        f"{to_direct:.2f} s after traffic started; RTT via relay median "
        f"{statistics.median(r.rtt_ms for r in relayed) if relayed else float('nan'):.3f} ms "
        f"({len(relayed)} replies), direct median "
        f"{statistics.median(r.rtt_ms for r in lossless):.3f} ms ({len(lossless)} replies)"
    )


@pytest.mark.parametrize("lab", [True], indirect=True)
def test_behind_a_symmetric_nat_traffic_stays_on_the_relay_quietly(lab: Lab) -> None:
    a, b = lab.nodes(("a", "10.0.1.2"), ("b", "10.0.2.2"))
    assert wait_mapping(lab, a)["natType"] == "symmetric"
    assert wait_mapping(lab, b)["natType"] == "endpointIndependent"
    # 40 s of traffic: one attempt (10 s of checks, 15 s more for the listening side) fails,
    # the next is a minute away.
    replies = ping_stream(a.ns, b.address, count=200, interval=0.2)
    assert len(replies) >= 190, f"{len(replies)}/200 replies"
    links = punched(lab, a), punched(lab, b)
    # Never direct, never flapping (on failure: the links and both logs say how it happened).
    assert {r.ttl for r in replies} == {RELAYED_TTL}, f"{links}\n{a.log()}\n{b.log()}"
    assert links == ([], [])
    status = lab.api(a, "/pymycelium/nat")
    (attempt,) = status["nodes"]  # type: ignore[index]
    assert attempt["state"] == "idle" and attempt["failures"] == 1 and attempt["retryIn"] > 0
    for node in (a, b):
        lines = quiet(node)
        # Only the gathering line ("NAT traversal: symmetric NAT, candidates ...").
        assert all("NAT traversal:" in line for line in lines), lines
        assert len(lines) <= 2, lines


def test_two_nodes_behind_one_nat_meet_on_their_local_addresses(lab: Lab) -> None:
    a, c = lab.nodes(("a", "10.0.1.2"), ("c", "10.0.1.3"))
    wait_mapping(lab, a)
    wait_mapping(lab, c)
    started = time.time()
    replies = ping_stream(a.ns, c.address, count=60, interval=0.2)
    direct = [r for r in replies if r.ttl == DIRECT_TTL]
    assert direct, f"no direct link:\n{a.log()}\n{c.log()}"
    (on_a,), (on_c,) = punched(lab, a), punched(lab, c)
    assert on_a["endpoint"]["addr"]["socket"] == "10.0.1.3:9651"
    assert on_c["endpoint"]["addr"]["socket"] == "10.0.1.2:9651"
    print(f"\nsame NAT: direct link {direct[0].at - started:.2f} s after traffic started")
