"""The real TUN device inside a fresh network namespace (root only; namespaces named mtun-*)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
    pytest.mark.skipif(not os.path.exists("/dev/net/tun"), reason="needs /dev/net/tun"),
]

SRC = Path(__file__).resolve().parents[2] / "src"
TESTS = Path(__file__).resolve().parents[1]
PYTHONPATH = os.pathsep.join((str(SRC), str(TESTS)))  # the probes import dp_fakes

PROBE = r"""
import json, select, subprocess, sys, time
from mycelium.dataplane import icmp
from mycelium.identity import Identity
from mycelium.tun import TunDevice

def ip(*args):
    return json.loads(subprocess.run(["ip", "-j", *args], check=True, capture_output=True,
                                     text=True).stdout or "[]")

def read_until(tun, match, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        select.select([tun], [], [], 0.2)
        for packet in tun.read_batch(64):
            if match(packet):
                return packet
    return None

ident = Identity.from_secret(bytes(range(32)))
target = bytes.fromhex("05ff0000000000000000000000000001")
out = {}
tun = TunDevice.open("mycelium", ident.address)
try:
    out["name"] = tun.name
    out["first_read"] = len(tun.read_batch(8))  # returns at once (non-blocking fd)
    out["link"] = ip("link", "show", "dev", "mycelium")
    out["addrs"] = ip("-6", "addr", "show", "dev", "mycelium")
    out["routes"] = ip("-6", "route", "show")
    ping = subprocess.Popen(["ping", "-6", "-c", "3", "-i", "0.3", "-W", "1", "5ff::1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    request = read_until(tun, lambda p: len(p) >= 48 and p[6] == 58 and p[40] == 128
                         and p[24:40] == target)
    ping.wait()
    out["echo_request"] = None if request is None else request.hex()
    # write an echo request *to* our own address: the kernel answers with an echo reply
    probe = icmp.icmpv6_packet(target, ident.address, 64, 128, 0, b"probe",
                               rest=b"\x42\x42\x00\x07")
    out["written"] = tun.write_batch([probe, b"\x00garbage-not-ip" * 3])
    out["write_errors"] = tun.write_errors
    reply = read_until(tun, lambda p: len(p) >= 48 and p[6] == 58 and p[40] == 129)
    out["echo_reply"] = None if reply is None else reply.hex()
finally:
    tun.close()
out["after_close"] = subprocess.run(["ip", "link", "show", "dev", "mycelium"],
                                    capture_output=True).returncode
out["address"] = ident.address.hex()
print(json.dumps(out))
"""


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"mtun-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def run_in(ns: str, code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    return subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_tun_device_in_namespace(netns: str) -> None:
    result = run_in(netns, PROBE)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    address = bytes.fromhex(out["address"])

    assert out["name"] == "mycelium"
    assert out["first_read"] <= 8
    [link] = out["link"]
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    [info] = out["addrs"]
    global_addrs = [a for a in info["addr_info"] if a["scope"] == "global"]
    assert len(global_addrs) == 1 and global_addrs[0]["prefixlen"] == 7
    assert (
        bytes.fromhex("".join(f"{int(x, 16):04x}" for x in _expand(global_addrs[0]["local"])))
        == address
    )
    overlay_routes = [r for r in out["routes"] if r.get("dev") == "mycelium"]
    assert {r["dst"] for r in overlay_routes} <= {"400::/7", "fe80::/64"}
    assert "400::/7" in {r["dst"] for r in overlay_routes}

    request = bytes.fromhex(out["echo_request"])
    assert request[8:24] == address and request[40] == 128

    assert out["written"] == 1 and out["write_errors"] == 1
    reply = bytes.fromhex(out["echo_reply"])
    assert reply[8:24] == address and reply[40] == 129 and reply[44:48] == b"\x42\x42\x00\x07"
    assert reply[48:] == b"probe"

    assert out["after_close"] != 0  # the interface disappeared with the fd


def test_second_open_of_the_same_name_is_a_typed_error(netns: str) -> None:
    code = (
        "from mycelium.tun import TunDevice, TunError\n"
        "a = TunDevice.open('mtuntest')\n"
        "try:\n"
        "    TunDevice.open('mtuntest')\n"
        "except TunError as e:\n"
        "    print('TunError', e)\n"
    )
    result = run_in(netns, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TunError") and "--tun-name" in result.stdout


def _expand(text: str) -> list[str]:
    import ipaddress

    return ipaddress.IPv6Address(text).exploded.split(":")


PING_THROUGH_OVERLAY = r"""
import ctypes, json, os, select, subprocess, sys, time
from dp_fakes import take_frames
from mycelium.crypto import KeyCache
from mycelium.dataplane import DataPlane
from mycelium.identity import Identity
from mycelium.routing import Forward, Local, Queue
from mycelium.subnet import Subnet
from mycelium.tun import TunDevice
from mycelium.wire.stream import StreamDecoder

ns_a, ns_b = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)

def setns(name):
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)

A = Identity.from_secret(bytes(range(32)))
B = Identity.from_secret(bytes(range(1, 33)))

class OneRoute:
    version = 0
    def __init__(self, own, peer):
        self.own, self.peer = own, peer
        self.versioned = self
    def route(self, dst, now, origin=False):
        if Subnet.of(dst, 64) == self.peer.subnet:
            return Forward("peer", self.peer.public_key)
        return Local() if Subnet.of(dst, 64) == self.own.subnet else Queue(Subnet.of(dst, 64))
    def public_key_for(self, address):
        return self.peer.public_key if Subnet.of(address, 64) == self.peer.subnet else None
    def request_route(self, address, now):
        pass

setns(ns_a)
tun_a = TunDevice.open("mycelium", A.address)
setns(ns_b)
tun_b = TunDevice.open("mycelium", B.address)
dp_a = DataPlane(A, OneRoute(A, B), KeyCache(A.secret))
dp_b = DataPlane(B, OneRoute(B, A), KeyCache(B.secret))
wire_a, wire_b = StreamDecoder(), StreamDecoder()
hops_on_wire = set()
ping = subprocess.Popen(["ip", "netns", "exec", ns_a, "ping", "-6", "-c", "3", "-i", "0.2",
                         "-W", "2", B.address_text], stdout=subprocess.PIPE, text=True)
deadline = time.monotonic() + 20
while ping.poll() is None and time.monotonic() < deadline:
    ready, _, _ = select.select([tun_a, tun_b], [], [], 0.05)
    now = time.monotonic()
    if tun_a in ready:
        dp_a.from_tun(tun_a.read_batch(64), now)
    if tun_b in ready:
        dp_b.from_tun(tun_b.read_batch(64), now)
    for _, frame in take_frames(dp_a):
        packets = wire_b.feed(frame)
        hops_on_wire.update(p.hop_limit for p in packets)
        dp_b.from_link(packets, now)
    for _, frame in take_frames(dp_b):
        packets = wire_a.feed(frame)
        hops_on_wire.update(p.hop_limit for p in packets)
        dp_a.from_link(packets, now)
    tun_a.write_batch(dp_a.take_to_tun())
    tun_b.write_batch(dp_b.take_to_tun())
if ping.poll() is None:
    ping.kill()
out, _ = ping.communicate()
tun_a.close()
tun_b.close()
print(json.dumps({"rc": ping.returncode, "out": out, "hops": sorted(hops_on_wire),
                  "a": dp_a.counters.as_dict(), "b": dp_b.counters.as_dict()}))
"""


@pytest.fixture
def two_netns() -> Iterator[tuple[str, str]]:
    names = [f"mtun-{os.getpid()}-{secrets.token_hex(3)}" for _ in range(2)]
    try:
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
        yield names[0], names[1]
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def test_ping_between_two_tuns_through_two_data_planes(two_netns: tuple[str, str]) -> None:
    """Kernel -> TUN -> seal -> frame -> open -> TUN -> kernel, and back: ping succeeds."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    result = subprocess.run(
        [sys.executable, "-c", PING_THROUGH_OVERLAY, *two_netns],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["rc"] == 0, out
    assert "3 received" in out["out"]
    # 64 from the kernel, 63 on the wire, 62 in the delivered packet (docs/wire.md §13 items 16/17)
    assert "ttl=62" in out["out"]
    assert 63 in out["hops"]
    assert out["a"]["sent"] >= 3 and out["b"]["delivered"] >= 3
