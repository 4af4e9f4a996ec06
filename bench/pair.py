"""Two nodes in two network namespaces joined by a veth, and what one bulk transfer across the
overlay costs: iperf3 TCP throughput and retransmits, ping RTT idle and under that load, CPU
seconds per GB carried, TUN TX drops on the sending node, resident memory.

Node ``a`` receives (iperf3 server), node ``b`` sends (iperf3 client). Either node may be ours or
any binary taking the reference's flags. Needs root, iproute2, iputils ping and iperf3.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import cpu_seconds, median, percentile, rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from netns.harness import MYCELIUM, Network, NodeProcess

_RTT = re.compile(r"time=([0-9.]+) ms")
#: Idle pings per round, 20 ms apart (30 were too few for a stable median).
IDLE_PINGS = 100
#: A busy loop on one CPU at the lowest priority there is (anything runnable preempts it).
_SPIN = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
while True:
    pass
"""


@dataclass
class Pair:
    """A running pair; ``close()`` removes namespaces and processes."""

    label: str
    net: Network
    a: NodeProcess
    b: NodeProcess
    underlay_a: str
    _tmp: tempfile.TemporaryDirectory[str] = field(repr=False)

    @property
    def pids(self) -> list[int]:
        return [n.proc.pid for n in (self.a, self.b) if n.proc is not None]

    def close(self) -> None:
        try:
            self.net.close()
        finally:
            self._tmp.cleanup()


def start(
    label: str,
    proto: str = "tcp",
    *,
    binary_a: str = MYCELIUM,
    binary_b: str = MYCELIUM,
    extra: tuple[str, ...] = (),
    prefix: str | None = None,
) -> Pair:
    """Start a pair whose sender ``b`` dials receiver ``a`` over ``proto``; returns once the
    overlay carries pings."""
    tmp = tempfile.TemporaryDirectory()
    net = Network(prefix=prefix or f"bp{label[:6]}-", workdir=Path(tmp.name))
    try:
        ns_a, ns_b = net.ns("a"), net.ns("b")
        _, _, addr_a, _ = net.link(ns_a, ns_b)
        args = ("--disable-peer-discovery", *extra)
        a = net.start_node(ns_a, [], *args, binary=binary_a, debug=False)
        peer = f"{proto}://[{addr_a}]:9651"
        b = net.start_node(ns_b, [peer], *args, binary=binary_b, debug=False)
        net.wait_tun(a)
        net.wait_tun(b)
        net.wait_ping(ns_b, a.address, timeout=30)
        return Pair(label, net, a, b, addr_a, tmp)
    except BaseException:
        net.close()
        tmp.cleanup()
        raise


def interpreter(binary: str) -> str | None:
    """The Python a console script runs on (its ``#!`` line); None: not a Python script."""
    try:
        with open(shutil.which(binary) or binary, "rb") as script:
            first = script.readline()
    except OSError:
        return None
    if not first.startswith(b"#!") or b"python" not in first:
        return None
    return first[2:].decode().strip()


def runtime(binary: str) -> dict[str, Any] | None:
    """What runs our ``mycelium`` script: the interpreter (resolved past the venv) and its
    version, and whether the data plane is the mypyc-compiled one. None: not ours, or its
    interpreter cannot tell. The interpreter's build counts: an optimised one (PGO and LTO)
    answered idle pings 0.07 ms sooner than a plain one (docs/architecture.md §6)."""
    python = interpreter(binary)
    if python is None:
        return None
    probe = (
        "import os, sys, mycelium.dataplane.plane as p; "
        "print(os.path.realpath(sys.executable), sys.version.split()[0], "
        "not p.__file__.endswith('.py'))"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
    fields = done.stdout.split()
    if len(fields) != 3 or fields[2] not in ("True", "False"):
        return None
    return {"python": fields[0], "python_version": fields[1], "compiled": fields[2] == "True"}


def ping_rtts(pair: Pair, count: int, interval: float, address: str | None = None) -> list[float]:
    """RTTs in ms of ``count`` pings from ``b`` to ``a`` (lost ones are simply missing)."""
    out = pair.net.exec(
        pair.b.ns,
        "ping",
        "-6",
        "-n",
        "-c",
        str(count),
        "-i",
        str(interval),
        "-W",
        "2",
        address or pair.a.address,
        check=False,
        timeout=count * interval + 30,
    )
    return [float(m) for m in _RTT.findall(out.stdout)]


@contextmanager
def cpus_awake() -> Iterator[None]:
    """Keep every CPU from idling while inside: one ``SCHED_IDLE`` busy loop per CPU.

    On a virtual machine a CPU that halts between two pings comes back with cold caches, and
    each step of the next packet's path then costs several times its warm time; the idle RTT
    mostly measures that. With no CPU halting, the RTT measures the per-packet work itself.
    Diagnostic only: a node never spins."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", _SPIN, str(cpu)])
        for cpu in sorted(os.sched_getaffinity(0))
    ]
    try:
        time.sleep(0.2)
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    """These processes stopped (SIGSTOP) while inside, and continued after."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def tun_tx(pair: Pair, node: NodeProcess) -> tuple[int, int]:
    """(packets, dropped) the kernel counted on the node's TUN transmit side (what it handed the
    node to read, and what it dropped because the node did not read in time)."""
    out = pair.net.exec(node.ns, "ip", "-s", "-j", "link", "show", "dev", "mycelium")
    tx = json.loads(out.stdout)[0]["stats64"]["tx"]
    return int(tx["packets"]), int(tx["dropped"])


def idle_rss_mb(pair: Pair) -> float:
    """The larger resident size of the two nodes (at rest when called before any traffic)."""
    return max(rss_mb(pid) for pid in pair.pids)


@contextmanager
def iperf3_server(ns: str) -> Iterator[None]:
    """A one-shot iperf3 server on port 5201 in ``ns``, listening by the time the body runs."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns, "iperf3", "-s", "-1", "-p", "5201"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        yield
    finally:
        server.kill()
        server.wait()


def bulk(pair: Pair, seconds: float, *, address: str | None = None) -> dict[str, Any]:
    """One iperf3 TCP run from ``b`` to ``a`` across the overlay (or to ``address``), with pings
    running alongside it; figures of that run."""
    target = address or pair.a.address
    idle = ping_rtts(pair, IDLE_PINGS, 0.02, target)
    with cpus_awake():
        awake = ping_rtts(pair, IDLE_PINGS, 0.02, target)
    with iperf3_server(pair.a.ns):
        packets0, drops0 = tun_tx(pair, pair.b)
        cpu0 = cpu_seconds(pair.pids)
        command = ["iperf3", "-c", target, "-p", "5201", "-t", str(seconds), "-J"]
        client = subprocess.Popen(
            ["ip", "netns", "exec", pair.b.ns, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # Pings while the transfer runs, leaving out its first second (slow start).
        time.sleep(1.0)
        loaded = ping_rtts(pair, max(10, int((seconds - 1.5) / 0.02)), 0.02, target)
        stdout, _ = client.communicate(timeout=seconds + 60)
        cpu1 = cpu_seconds(pair.pids)
        packets1, drops1 = tun_tx(pair, pair.b)
    result = json.loads(stdout)
    if "error" in result:
        raise RuntimeError(f"iperf3 across {pair.label}: {result['error']}")
    end = result["end"]
    gbit = end["sum_received"]["bits_per_second"] / 1e9
    gbytes = end["sum_received"]["bytes"] / 1e9
    return {
        "gbit_s": round(gbit, 3),
        "retransmits": end["sum_sent"].get("retransmits"),
        "node_cpu_s_per_gb": round((cpu1 - cpu0) / gbytes, 2) if gbytes else None,
        "rtt_idle_ms": round(median(idle), 3) if idle else None,
        "rtt_idle_awake_ms": round(median(awake), 3) if awake else None,
        "rtt_load_p50_ms": round(median(loaded), 3) if loaded else None,
        "rtt_load_p99_ms": round(percentile(loaded, 0.99), 3) if loaded else None,
        "ping_loss_under_load": round(1 - len(loaded) / max(10, int((seconds - 1.5) / 0.02)), 3),
        "sender_tun_tx_packets": packets1 - packets0,
        "sender_tun_tx_dropped": drops1 - drops0,
        "rss_mb": round(max(rss_mb(pid) for pid in pair.pids), 1),
    }
