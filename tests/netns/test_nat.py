"""NAT traversal on real namespaces (docs/nat.md): LANs behind Linux NAT routers (nftables
masquerade, forward and input dropped unless established), a public node in the middle (the
reference binary when MYCELIUM_REFERENCE_BIN is set, ours otherwise) and a STUN responder of the
test's own on the public side.

    lan hosts --(bridge)-- nat_a ==[198.51.100.0/24]== pub ==[203.0.113.0/24]== nat_b -- lan host

The NATs forget idle UDP mappings after 30 s (conntrack timeouts lowered from 120 s), so a
punched link that survives a minute of idle does so by its keepalives.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from netns.harness import Network, NodeProcess, run, spawn_ready, wait_until

pytestmark = pytest.mark.netns

REFERENCE = os.environ.get("MYCELIUM_REFERENCE_BIN", "")
PUB_A, NAT_A = "198.51.100.254", "198.51.100.1"
PUB_B, NAT_B = "203.0.113.254", "203.0.113.1"
STUN_PORTS = ("3478", "3479")
#: Hop limit of an echo reply that crossed one overlay link (direct) or two (via the relay).
DIRECT_TTL, RELAYED_TTL = 62, 61

# A STUN responder in a few lines, independent of the node's codec: Binding success with an
# XOR-MAPPED-ADDRESS of wherever the request came from.
STUN_RESPONDER = """
import select, socket, struct, sys
socks = []
for port in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(port)))
    socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, (host, port) = s.recvfrom(2048)
        if len(data) < 20 or data[:2] != b"\\x00\\x01" or data[4:8] != b"\\x21\\x12\\xa4\\x42":
            continue
        xaddr = bytes(a ^ b for a, b in zip(socket.inet_aton(host), data[4:8]))
        attr = struct.pack("!HHBBH", 0x20, 8, 0, 1, port ^ 0x2112) + xaddr
        s.sendto(struct.pack("!HH", 0x0101, len(attr)) + data[4:20] + attr, (host, port))
"""

NFT_RULES = """
table ip nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat;
        oifname "wan" masquerade{random}
    }}
}}
table inet filter {{
    chain forward {{
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "lan" accept
    }}
    chain input {{
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iifname {{ "lan", "lo" }} accept
    }}
}}
"""

API_GET = (
    "import sys,urllib.request;"
    "print(urllib.request.urlopen('http://127.0.0.1:8989/api/v1'+sys.argv[1],timeout=3)"
    ".read().decode())"
)


@dataclass
class Lab:
    net: Network
    pub: str
    nat_a: str
    nat_b: str
    relay: NodeProcess
    stun: subprocess.Popen[str]
    _veths: int = 0

    def veth(self, a: str, name_a: str, b: str, name_b: str) -> None:
        self._veths += 1
        tmp_a, tmp_b = (
            f"{self.net.prefix[:6]}n{self._veths}a",
            f"{self.net.prefix[:6]}n{self._veths}b",
        )
        run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        run("ip", "link", "set", tmp_a, "netns", a, "name", name_a)
        run("ip", "link", "set", tmp_b, "netns", b, "name", name_b)
        for ns, name in ((a, name_a), (b, name_b)):
            self.net.exec(ns, "ip", "link", "set", name, "up")

    def host(self, name: str, router: str, address: str) -> str:
        """A host on ``router``'s LAN (a bridge), its default route through the router."""
        ns = self.net.ns(name)
        self._veths += 1
        port = f"p{self._veths}"
        self.veth(ns, "eth0", router, port)
        self.net.exec(router, "ip", "link", "set", port, "master", "lan")
        self.net.exec(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        gateway = address.rsplit(".", 1)[0] + ".1"
        self.net.exec(ns, "ip", "route", "add", "default", "via", gateway)
        return ns

    def nodes(self, *hosts: tuple[str, str]) -> list[NodeProcess]:
        """Ours on the LANs, one per (name, address) (10.0.1.x behind nat_a, 10.0.2.x behind
        nat_b): each peers with the relay only, asks the two STUN "servers", and waits for its
        STUN mapping."""
        nodes = []
        for name, address in hosts:
            behind_a = address.startswith("10.0.1.")
            ns = self.host(name, self.nat_a if behind_a else self.nat_b, address)
            pub = PUB_A if behind_a else PUB_B
            stun = [a for port in STUN_PORTS for a in ("--stun-server", f"{pub}:{port}")]
            peers = [f"tcp://{pub}:9651"]
            nodes.append(self.net.start_node(ns, peers, "--disable-peer-discovery", *stun))
        for node in nodes:
            self.net.wait_tun(node)
        return nodes

    def api(self, node: NodeProcess, path: str) -> object:
        out = self.net.exec(node.ns, sys.executable, "-c", API_GET, path, check=False)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return None


def nat_router(net: Network, name: str, pub: str, wan: str, lan: str, random: bool) -> str:
    ns = net.ns(name)
    net.exec(ns, "ip", "link", "add", "lan", "type", "bridge")
    net.exec(ns, "ip", "link", "set", "lan", "up")
    net.exec(ns, "ip", "addr", "add", f"{lan}/24", "dev", "lan")
    net.exec(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    rules = NFT_RULES.format(random=" random" if random else "")
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True, check=True
    )
    for key in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
        net.exec(ns, "sysctl", "-qw", f"net.netfilter.{key}=30")
    return ns


@pytest.fixture
def lab(net: Network, request: pytest.FixtureRequest) -> Lab:
    for tool in ("nft", "ping"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.skip(f"needs {tool} (apt install nftables iputils-ping)")
    symmetric_a = getattr(request, "param", False)
    pub = net.ns("pub")
    net.exec(pub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    nat_a = nat_router(net, "nata", pub, NAT_A, "10.0.1.1", random=symmetric_a)
    nat_b = nat_router(net, "natb", pub, NAT_B, "10.0.2.1", random=False)
    lab = Lab(net, pub, nat_a, nat_b, None, None)  # type: ignore[arg-type]
    for router, wan, pub_ip in ((nat_a, NAT_A, PUB_A), (nat_b, NAT_B, PUB_B)):
        side = f"to{router[-1]}"
        lab.veth(router, "wan", pub, side)
        net.exec(router, "ip", "addr", "add", f"{wan}/24", "dev", "wan")
        net.exec(router, "ip", "route", "add", "default", "via", pub_ip)
        net.exec(pub, "ip", "addr", "add", f"{pub_ip}/24", "dev", side)
    binary = REFERENCE if REFERENCE and os.access(REFERENCE, os.X_OK) else None
    extra = ("--disable-peer-discovery", "--no-tun")
    lab.relay = (
        net.start_node(pub, [], *extra, binary=binary)
        if binary
        else net.start_node(pub, [], *extra)
    )
    net.wait_listening(lab.relay)
    lab.stun = spawn_ready(pub, STUN_RESPONDER, *STUN_PORTS)
    request.addfinalizer(lambda: (lab.stun.kill(), lab.stun.wait()))
    return lab


def wait_mapping(lab: Lab, node: NodeProcess) -> dict:
    status = wait_until(
        lambda: (s := lab.api(node, "/pymycelium/nat")) and s.get("publicAddresses") and s,  # type: ignore[union-attr]
        timeout=30,
    )
    assert status, f"no STUN mapping on {node.ns}:\n{node.log()}"
    return status  # type: ignore[no-any-return]


def punched(lab: Lab, node: NodeProcess) -> list[dict]:
    peers = lab.api(node, "/admin/peers") or []
    return [p for p in peers if p["type"] == "holePunched"]  # type: ignore[union-attr]


@dataclass
class Reply:
    at: float
    ttl: int
    rtt_ms: float


def ping_stream(net: Network, ns: str, address: str, count: int, interval: float) -> list[Reply]:
    """``ping -D`` replies with their time stamp, hop limit and round trip."""
    out = net.exec(
        ns,
        "ping",
        "-6",
        "-n",
        "-D",
        "-i",
        str(interval),
        "-c",
        str(count),
        "-W",
        "2",
        address,
        check=False,
        timeout=count * interval + 30,
    ).stdout
    replies = []
    for line in out.splitlines():
        if "ttl=" not in line or not line.startswith("["):
            continue
        fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
        replies.append(
            Reply(float(line[1 : line.index("]")]), int(fields["ttl"]), float(fields["time"]))
        )
    return replies


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
    net = lab.net
    a, b = lab.nodes(("a", "10.0.1.2"), ("b", "10.0.2.2"))
    status_a, status_b = wait_mapping(lab, a), wait_mapping(lab, b)
    assert status_a["natType"] == status_b["natType"] == "endpointIndependent"
    assert status_a["publicAddresses"] == [f"{NAT_A}:9651"]
    assert {"kind": "host", "address": "10.0.1.2:9651"} in status_a["candidates"]

    # Traffic starts: pings through the relay, then (once punched) directly. Every 20 ms, so
    # that the relayed round trips before the punch are a sample too.
    started = time.time()
    replies = ping_stream(net, a.ns, b.address, count=500, interval=0.02)
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
    routes = {r["subnet"]: r for r in lab.api(a, "/admin/routes/selected") or []}  # type: ignore[union-attr]
    subnet_b = next(s for s in routes if b.address.startswith(s.split("::")[0] + ":"))
    # (QUIC links name IPv4 peers in the dual-stack socket's mapped form.)
    assert routes[subnet_b]["nextHop"] == f"QUIC -> [::ffff:{NAT_B}]:9651"
    lossless = ping_stream(net, a.ns, b.address, count=100, interval=0.02)
    assert len(lossless) == 100 and {r.ttl for r in lossless} == {DIRECT_TTL}

    # A minute of silence (the NATs forget mappings idle for 30 s): the link holds.
    rx_before = on_a["rxBytes"]
    time.sleep(65)
    (still,) = punched(lab, a)
    assert still["endpoint"] == on_a["endpoint"] and still["connectionState"] == "alive"
    assert still["rxBytes"] > rx_before  # Hellos and IHUs kept flowing
    after = ping_stream(net, a.ns, b.address, count=10, interval=0.1)
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
    net = lab.net
    a, b = lab.nodes(("a", "10.0.1.2"), ("b", "10.0.2.2"))
    assert wait_mapping(lab, a)["natType"] == "symmetric"
    assert wait_mapping(lab, b)["natType"] == "endpointIndependent"
    # 40 s of traffic: one attempt (10 s of checks, 15 s more for the listening side) fails,
    # the next is a minute away.
    replies = ping_stream(net, a.ns, b.address, count=200, interval=0.2)
    assert len(replies) >= 190, f"{len(replies)}/200 replies"
    assert {r.ttl for r in replies} == {RELAYED_TTL}  # never direct, never flapping
    assert punched(lab, a) == [] and punched(lab, b) == []
    status = lab.api(a, "/pymycelium/nat")
    (attempt,) = status["nodes"]  # type: ignore[index]
    assert attempt["state"] == "idle" and attempt["failures"] == 1 and attempt["retryIn"] > 0
    for node in (a, b):
        lines = quiet(node)
        # Only the gathering line ("NAT traversal: symmetric NAT, candidates ...").
        assert all("NAT traversal:" in line for line in lines), lines
        assert len(lines) <= 2, lines


def test_two_nodes_behind_one_nat_meet_on_their_local_addresses(lab: Lab) -> None:
    net = lab.net
    a, c = lab.nodes(("a", "10.0.1.2"), ("c", "10.0.1.3"))
    wait_mapping(lab, a)
    wait_mapping(lab, c)
    started = time.time()
    replies = ping_stream(net, a.ns, c.address, count=60, interval=0.2)
    direct = [r for r in replies if r.ttl == DIRECT_TTL]
    assert direct, f"no direct link:\n{a.log()}\n{c.log()}"
    (on_a,), (on_c,) = punched(lab, a), punched(lab, c)
    assert on_a["endpoint"]["addr"]["socket"] == "10.0.1.3:9651"
    assert on_c["endpoint"]["addr"]["socket"] == "10.0.1.2:9651"
    print(f"\nsame NAT: direct link {direct[0].at - started:.2f} s after traffic started")
