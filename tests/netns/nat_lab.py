"""The NAT lab on real namespaces (docs/nat.md), shared by tests/netns/test_nat.py and
bench/nat.py: LANs behind Linux NAT routers (nftables masquerade, forward and input dropped
unless established), a public side with a relay node and a STUN responder of the lab's own.

    lan hosts --(bridge)-- nat_a ==[198.51.100.0/24]== pub ==[203.0.113.0/24]== nat_b -- lan host

The NATs forget idle UDP mappings after 30 s (conntrack timeouts lowered from 120 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from netns.harness import Network, NodeProcess, run, spawn_ready, wait_until

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
    extra: tuple[str, ...] = ()
    relay: NodeProcess | None = None
    stun: subprocess.Popen[str] | None = None
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
        nat_b): each peers with the relay only and asks the two STUN "servers"; returned once
        their TUN is up."""
        nodes = []
        for name, address in hosts:
            behind_a = address.startswith("10.0.1.")
            ns = self.host(name, self.nat_a if behind_a else self.nat_b, address)
            pub = PUB_A if behind_a else PUB_B
            stun = [a for port in STUN_PORTS for a in ("--stun-server", f"{pub}:{port}")]
            peers = [f"tcp://{pub}:9651"]
            flags = ("--disable-peer-discovery", *stun, *self.extra)
            nodes.append(self.net.start_node(ns, peers, *flags))
        for node in nodes:
            self.net.wait_tun(node)
        return nodes

    def api(self, node: NodeProcess, path: str) -> object:
        out = self.net.exec(node.ns, sys.executable, "-c", API_GET, path, check=False)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return None


def nat_router(net: Network, name: str, wan: str, lan: str, random: bool) -> str:
    """A NAT router: LAN bridge ``lan`` (``lan`` address), masquerade out of ``wan``."""
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


def build_lab(net: Network, symmetric_a: bool = False, extra: tuple[str, ...] = ()) -> Lab:
    """The two NATs (``symmetric_a``: nat_a maps each destination to its own random port), the
    public side with its relay node (the reference binary when MYCELIUM_REFERENCE_BIN names
    one) and the STUN responder. ``extra``: flags for the LAN nodes."""
    pub = net.ns("pub")
    net.exec(pub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    nat_a = nat_router(net, "nata", NAT_A, "10.0.1.1", random=symmetric_a)
    nat_b = nat_router(net, "natb", NAT_B, "10.0.2.1", random=False)
    lab = Lab(net, pub, nat_a, nat_b, extra=extra)
    for router, wan, pub_ip in ((nat_a, NAT_A, PUB_A), (nat_b, NAT_B, PUB_B)):
        side = f"to{router[-1]}"
        lab.veth(router, "wan", pub, side)
        net.exec(router, "ip", "addr", "add", f"{wan}/24", "dev", "wan")
        net.exec(router, "ip", "route", "add", "default", "via", pub_ip)
        net.exec(pub, "ip", "addr", "add", f"{pub_ip}/24", "dev", side)
    flags = ("--disable-peer-discovery", "--no-tun")
    if REFERENCE and os.access(REFERENCE, os.X_OK):
        lab.relay = net.start_node(pub, [], *flags, binary=REFERENCE)
    else:
        lab.relay = net.start_node(pub, [], *flags)
    net.wait_listening(lab.relay)
    lab.stun = spawn_ready(pub, STUN_RESPONDER, *STUN_PORTS)
    return lab


def wait_mapping(lab: Lab, node: NodeProcess) -> dict:  # type: ignore[type-arg]
    status = wait_until(
        lambda: (s := lab.api(node, "/pymycelium/nat")) and s.get("publicAddresses") and s,  # type: ignore[union-attr]
        timeout=30,
    )
    assert status, f"no STUN mapping on {node.ns}:\n{node.log()}"
    return status  # type: ignore[no-any-return]


def punched(lab: Lab, node: NodeProcess) -> list[dict]:  # type: ignore[type-arg]
    peers = lab.api(node, "/admin/peers") or []
    return [p for p in peers if p["type"] == "holePunched"]  # type: ignore[union-attr]


@dataclass
class Reply:
    at: float
    ttl: int
    rtt_ms: float


def ping_stream(
    ns: str, address: str, count: int, interval: float, until: int | None = None
) -> list[Reply]:
    """``ping -D`` replies with their time stamp, hop limit and round trip; with ``until``, it
    stops at the first reply with that hop limit."""
    args = ["ping", "-6", "-n", "-D", "-i", str(interval), "-c", str(count), "-W", "2", address]
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=subprocess.PIPE, text=True)
    replies: list[Reply] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "ttl=" not in line or not line.startswith("["):
                continue
            fields = dict(w.split("=", 1) for w in line.split() if "=" in w)
            at = float(line[1 : line.index("]")])
            replies.append(Reply(at, int(fields["ttl"]), float(fields["time"])))
            if replies[-1].ttl == until:
                break
    finally:
        proc.kill()
        proc.wait()
    return replies
