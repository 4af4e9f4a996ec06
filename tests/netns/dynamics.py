"""Routing dynamics on real networks: a lab shared by tests/netns/test_dynamics.py and
bench/dynamics.py.

The networks are rings with chords (eight nodes and two chords, or thirty nodes and fifteen
seeded random chords), links alternating TCP and QUIC, each node ours or the reference binary.
An ICMPv6 prober (icmp_prober.py) pings every chosen ordered pair of overlay addresses every
100 ms and logs sends and replies with wall-clock times, so the figures are computed afterwards
(probes.py) from what really crossed the overlay:

- start-up: from spawning the nodes until every pair has been answered once;
- healing: after an event at T (a silent cut, a killed relay), until every pair is answered
  continuously again (a few consecutive unanswered probes make an outage; a single lost probe
  on a loaded machine does not);
- loops: ICMPv6 time-exceeded errors quoting a probe, and probes whose hop limit shows a path
  longer than any loop-free one.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mycelium.identity import Identity
from netns.harness import MYCELIUM, Network, NodeProcess
from netns.probes import HOP_LIMIT, PENDING, PROBE_INTERVAL, Probes

REFERENCE = os.environ.get("MYCELIUM_REFERENCE_BIN", "")
PATTERNS = ("py", "ref", "mixed")
PROBER = Path(__file__).with_name("icmp_prober.py")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: The log line each kind of node writes once it listens and dials, and how its time is written.
_READY = {
    "py": (re.compile(r"^(\S+ \S+) .*node started"), "%Y-%m-%d %H:%M:%S,%f"),
    "ref": (re.compile(r"^(\S+)Z .*Started peer manager"), "%Y-%m-%dT%H:%M:%S.%f"),
}
_ERROR = re.compile(r"\bERROR\b|Traceback \(most recent call last\)")


def reference_available() -> bool:
    return bool(REFERENCE) and os.access(REFERENCE, os.X_OK)


# --- topology ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Topology:
    """Nodes 0..size-1 and undirected links; link k is TCP when k is even, QUIC when odd. The
    first ``size`` links are the ring, link i joining node i and node i+1 (mod size)."""

    size: int
    links: tuple[tuple[int, int], ...]

    @staticmethod
    def proto(k: int) -> str:
        return "tcp" if k % 2 == 0 else "quic"

    def distances(self) -> list[list[int]]:
        """Links on a shortest path between every two nodes (breadth first from each)."""
        around: list[list[int]] = [[] for _ in range(self.size)]
        for a, b in self.links:
            around[a].append(b)
            around[b].append(a)
        table = []
        for start in range(self.size):
            dist = [-1] * self.size
            dist[start] = 0
            todo = deque([start])
            while todo:
                here = todo.popleft()
                for there in around[here]:
                    if dist[there] < 0:
                        dist[there] = dist[here] + 1
                        todo.append(there)
            table.append(dist)
        return table

    def all_pairs(self) -> list[tuple[int, int]]:
        return [(a, b) for a in range(self.size) for b in range(self.size) if a != b]

    def sample_pairs(self, count: int, seed: int) -> list[tuple[int, int]]:
        pairs = self.all_pairs()
        return sorted(random.Random(seed).sample(pairs, min(count, len(pairs))))


def ring_with_chords(size: int, chords: Iterable[tuple[int, int]]) -> Topology:
    ring = tuple((i, (i + 1) % size) for i in range(size))
    return Topology(size, ring + tuple(chords))


def eight_node() -> Topology:
    """The ring of eight with two chords; each chord joins a node that is ours and one that is
    the reference's in a mixed network, so each kind has relays of degree three."""
    return ring_with_chords(8, [(0, 4), (3, 7)])


def random_chords(size: int, count: int, seed: int) -> Topology:
    """A ring plus ``count`` distinct random chords (not ring links), drawn from ``seed``."""
    rng = random.Random(seed)
    taken = {frozenset((i, (i + 1) % size)) for i in range(size)}
    chords: list[tuple[int, int]] = []
    while len(chords) < count:
        a, b = sorted(rng.sample(range(size), 2))
        if frozenset((a, b)) not in taken:
            taken.add(frozenset((a, b)))
            chords.append((a, b))
    return ring_with_chords(size, chords)


def node_kinds(pattern: str, size: int) -> list[str]:
    """``py`` or ``ref`` for each node: all ours, all the reference's, or alternating."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern {pattern!r} is not one of {PATTERNS}")
    if pattern == "mixed":
        return ["py" if i % 2 == 0 else "ref" for i in range(size)]
    return [pattern] * size


# --- the lab ----------------------------------------------------------------------------------
@dataclass
class LabLink:
    a: int
    b: int
    proto: str
    if_a: str
    if_b: str
    addr_a: str  # b dials a here


@dataclass
class Lab:
    net: Network
    topology: Topology
    kinds: list[str]
    binaries: dict[str, str]
    #: Drawn before the nodes start, so the prober knows every overlay address.
    identities: list[Identity] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    links: list[LabLink] = field(default_factory=list)
    nodes: list[NodeProcess] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    probes: Probes | None = None
    started_at: float = 0.0
    killed: set[int] = field(default_factory=set)
    _prober: subprocess.Popen[str] | None = None

    def peers_of(self, i: int) -> list[str]:
        host = {"tcp": "tcp://[{}]:9651", "quic": "quic://[{}]:9651"}
        return [host[link.proto].format(link.addr_a) for link in self.links if link.b == i]

    def start(self, pairs: list[tuple[int, int]]) -> None:
        """Start the prober for ``pairs``, then every node at once; ``started_at`` is the wall
        time just before the first node was spawned."""
        self.pairs = pairs
        out = self.net.workdir / "probes.log"
        spec = [
            [self.names[i], i, [[d, self.address(d)] for s, d in pairs if s == i]]
            for i in sorted({i for pair in pairs for i in pair})
        ]
        self._prober = subprocess.Popen(
            [sys.executable, str(PROBER), str(out), str(PROBE_INTERVAL), json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._prober.stdout is not None
        ready = self._prober.stdout.readline().strip()
        assert ready == "ready", f"prober did not start: {ready!r}"
        self.probes = Probes(out)
        self.started_at = time.time()
        for i, ns in enumerate(self.names):
            binary = self.binaries[self.kinds[i]]
            self.nodes.append(
                self.net.start_node(
                    ns,
                    self.peers_of(i),
                    "--disable-peer-discovery",
                    identity=self.identities[i],
                    binary=binary,
                )
            )

    def address(self, i: int) -> str:
        return self.identities[i].address_text

    def check_alive(self) -> None:
        for i, node in enumerate(self.nodes):
            if i not in self.killed and node.proc is not None and node.proc.poll() is not None:
                raise AssertionError(f"node {i} ({node.ns}) exited:\n{node.log()}")

    def live_pairs(self) -> list[tuple[int, int]]:
        return [(a, b) for a, b in self.pairs if a not in self.killed and b not in self.killed]

    # --- waiting ----------------------------------------------------------------------------
    def wait_answered(self, timeout: float) -> float | None:
        """Seconds from start until every pair was answered once; None after ``timeout``."""
        assert self.probes is not None
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.check_alive()
            self.probes.read()
            done = self.probes.all_answered(self.pairs)
            if done is not None:
                return done - self.started_at
            time.sleep(0.25)
        return None

    def wait_healed(self, since: float, timeout: float, settle: float = 5.0) -> float | None:
        """Seconds from ``since`` until every live pair is answered continuously again, once
        that has lasted ``settle`` seconds; None if it has not after ``timeout``."""
        assert self.probes is not None
        deadline = since + timeout + settle
        while time.time() < deadline:
            self.check_alive()
            self.probes.read()
            now = time.time()
            healed = self.probes.all_healed(self.live_pairs(), since, now)
            if healed is not None and now - PENDING - healed >= settle:
                return healed - since
            time.sleep(0.5)
        return None

    def wait_direct(self, k: int, timeout: float) -> float | None:
        """Seconds until replies between the two ends of link k cross that link alone again."""
        assert self.probes is not None
        link = self.links[k]
        since = time.time()
        while time.time() < since + timeout:
            self.check_alive()
            self.probes.read()
            for pair in ((link.a, link.b), (link.b, link.a)):
                log = self.probes.pairs.get(pair)
                if log and log.replies:
                    when, hop = log.replies[max(log.replies)]
                    if when > since and hop == HOP_LIMIT - 2:
                        return when - since
            time.sleep(0.5)
        return None

    # --- events -----------------------------------------------------------------------------
    def cut(self, k: int) -> float:
        """Silently cut link k: its interface goes down on the dialling side (b); nothing is
        reset, only the dead-neighbour timers can tell. Returns the wall time of the cut."""
        link = self.links[k]
        when = time.time()
        self.net.exec(self.names[link.b], "ip", "link", "set", link.if_b, "down")
        return when

    def restore(self, k: int) -> None:
        link = self.links[k]
        self.net.exec(self.names[link.b], "ip", "link", "set", link.if_b, "up")

    def kill(self, i: int) -> float:
        """``kill -9`` node i (its TCP connections are reset, its QUIC peers hear nothing)."""
        self.killed.add(i)
        when = time.time()
        self.net.kill(self.nodes[i], signal.SIGKILL)
        return when

    def stop_prober(self) -> None:
        if self._prober is not None and self._prober.poll() is None:
            self._prober.terminate()
            self._prober.wait(timeout=10)
        if self.probes is not None:
            self.probes.read()

    # --- other checks -----------------------------------------------------------------------
    def farthest_pair(self) -> tuple[int, int]:
        """Two nodes the most links apart (of different kinds when there are two kinds)."""
        dist = self.topology.distances()
        pairs = self.topology.all_pairs()
        mixed = [(a, b) for a, b in pairs if self.kinds[a] != self.kinds[b]]
        return max(mixed or pairs, key=lambda p: (dist[p[0]][p[1]], -p[0], -p[1]))

    def ready_after(self) -> list[float | None]:
        """Seconds from ``started_at`` until each node logged that it listens and dials (the
        process's own start-up, before any routing), from the timestamps in its log (UTC)."""
        times: list[float | None] = []
        for i, node in enumerate(self.nodes):
            pattern, fmt = _READY[self.kinds[i]]
            found = None
            for line in _log_lines(node):
                match = pattern.search(line)
                if match:
                    stamp = datetime.strptime(match.group(1), fmt).replace(tzinfo=UTC)
                    found = round(stamp.timestamp() - self.started_at, 3)
                    break
            times.append(found)
        return times

    def error_lines(self) -> dict[int, list[str]]:
        """ERROR-level lines and tracebacks in each node's whole log."""
        found: dict[int, list[str]] = {}
        for i, node in enumerate(self.nodes):
            bad = [line for line in _log_lines(node) if _ERROR.search(line)]
            if bad:
                found[i] = bad
        return found

    def exchange_messages(self, a: int, b: int, timeout: float = 30) -> list[str]:
        """Messages a -> b and b -> a, then a request from a answered by b, each through the
        sending and receiving node's own CLI. Returns what went wrong (empty: all arrived)."""
        problems = []
        for src, dst in ((a, b), (b, a)):
            text = f"dynamics {src}->{dst}"
            listening = self._cli(dst, "message", "receive", "--timeout", str(timeout), "-t", "dyn")
            time.sleep(0.5)
            self._run_cli(src, "message", "send", self.address(dst), text, "-t", "dyn")
            got = _last_json(listening.communicate(timeout=timeout + 10)[0])
            if not got or got.get("payload") != text or got.get("srcIp") != self.address(src):
                problems.append(f"{src} -> {dst}: received {got!r}")
        listening = self._cli(b, "message", "receive", "--timeout", str(timeout), "-t", "rpc")
        time.sleep(0.5)
        waiting = self._cli(
            a, "message", "send", "--wait", "--timeout", str(timeout), "-t", "rpc",
            self.address(b), "ping",
        )  # fmt: skip
        request = _last_json(listening.communicate(timeout=timeout + 10)[0])
        if request and "id" in request:
            self._run_cli(
                b, "message", "send", self.address(a), "pong", "--reply-to", request["id"]
            )
        reply = _last_json(waiting.communicate(timeout=timeout + 10)[0])
        if not reply or reply.get("payload") != "pong" or reply.get("srcIp") != self.address(b):
            problems.append(f"request {a} -> {b}: request {request!r}, reply {reply!r}")
        return problems

    def _cli(self, i: int, *args: str) -> subprocess.Popen[str]:
        cmd = ["ip", "netns", "exec", self.names[i], self.nodes[i].args[0], *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def _run_cli(self, i: int, *args: str) -> None:
        self.net.exec(self.names[i], self.nodes[i].args[0], *args, check=False, timeout=60)


def _log_lines(node: NodeProcess) -> list[str]:
    """The node's whole log, colour codes removed (the reference colours its levels)."""
    try:
        text = node.log_file.read_text(errors="replace")
    except OSError:
        return []
    return [_ANSI.sub("", line) for line in text.splitlines()]


def _last_json(stdout: str) -> dict | None:
    """The JSON object a CLI printed last (the reference's client may log lines before it)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def build(
    net: Network,
    topology: Topology,
    pattern: str,
    ours: str = MYCELIUM,
    reference: str = REFERENCE,
) -> Lab:
    """Namespaces and veth links for ``topology`` (nothing started yet)."""
    kinds = node_kinds(pattern, topology.size)
    identities = [Identity.generate() for _ in range(topology.size)]
    lab = Lab(net, topology, kinds, {"py": ours, "ref": reference}, identities)
    lab.names = [net.ns(f"d{i}") for i in range(topology.size)]
    for k, (a, b) in enumerate(topology.links):
        if_a, if_b, addr_a, _ = net.link(lab.names[a], lab.names[b])
        lab.links.append(LabLink(a, b, topology.proto(k), if_a, if_b, addr_a))
    return lab


# --- scenarios --------------------------------------------------------------------------------
def _loops(lab: Lab) -> dict[str, Any]:
    assert lab.probes is not None
    everything = (0.0, float("inf"))
    exceeded = lab.probes.time_exceeded(*everything)
    longest = lab.probes.longest_path(*everything)
    return {
        "time_exceeded": exceeded,
        "longest_path_links": longest,
        "looped": exceeded > 0 or longest > lab.topology.size - 1,
        "unreachable_errors": lab.probes.unreachable(*everything),
    }


def _errors(lab: Lab) -> dict[str, dict[int, list[str]]]:
    found: dict[str, dict[int, list[str]]] = {"py": {}, "ref": {}}
    for i, lines in lab.error_lines().items():
        found[lab.kinds[i]][i] = lines[:5]
    return found


def _event(lab: Lab, since: float, heal_timeout: float, settle: float) -> dict[str, Any]:
    assert lab.probes is not None
    heal = lab.wait_healed(since, heal_timeout, settle)
    return {
        "heal_s": None if heal is None else round(heal, 2),
        "slowest": lab.probes.slowest(lab.live_pairs(), since, time.time()),
        "lost_probes": lab.probes.lost(lab.live_pairs(), since, time.time()),
    }


def ring_round(
    lab: Lab,
    *,
    cut_link: int = 0,
    relay: int = 3,
    startup_timeout: float = 120.0,
    heal_timeout: float = 240.0,
    settle: float = 5.0,
) -> dict[str, Any]:
    """Every ordered pair probed: start-up, messages across the most hops, a silent cut of
    ``cut_link`` (healed, then restored), ``kill -9`` of ``relay``; loops and ERROR lines."""
    lab.start(lab.topology.all_pairs())
    figures: dict[str, Any] = {
        "nodes": lab.topology.size,
        "kinds": "".join(k[0] for k in lab.kinds),
    }
    startup = lab.wait_answered(startup_timeout)
    figures["startup_s"] = None if startup is None else round(startup, 2)
    figures["ready_s"] = lab.ready_after()
    if startup is not None:
        stable = lab.wait_healed(lab.started_at, startup_timeout, settle=3.0)
        figures["startup_stable_s"] = None if stable is None else round(stable, 2)
        a, b = lab.farthest_pair()
        figures["messages"] = {
            "pair": [a, b],
            "links": lab.topology.distances()[a][b],
            "problems": lab.exchange_messages(a, b),
        }
        link = lab.links[cut_link]
        figures["cut"] = {
            "link": [link.a, link.b],
            "proto": link.proto,
            "down_side": link.b,
            **_event(lab, lab.cut(cut_link), heal_timeout, settle),
        }
        lab.restore(cut_link)
        direct = lab.wait_direct(cut_link, 60.0)
        figures["restore_direct_s"] = None if direct is None else round(direct, 2)
        lab.wait_healed(time.time(), 60.0, settle=3.0)
        figures["kill"] = {
            "node": relay,
            "kind": lab.kinds[relay],
            "protos": sorted(x.proto for x in lab.links if relay in (x.a, x.b)),
            **_event(lab, lab.kill(relay), heal_timeout, settle),
        }
    lab.stop_prober()
    figures.update(_loops(lab))
    figures["errors"] = _errors(lab)
    return figures


def startup_round(lab: Lab, pairs: list[tuple[int, int]], timeout: float = 120.0) -> dict[str, Any]:
    """Start-up alone: seconds until every one of ``pairs`` has been answered once."""
    lab.start(pairs)
    startup = lab.wait_answered(timeout)
    figures: dict[str, Any] = {
        "nodes": lab.topology.size,
        "pairs": len(pairs),
        "kinds": "".join(k[0] for k in lab.kinds),
        "startup_s": None if startup is None else round(startup, 2),
        "ready_s": lab.ready_after(),
    }
    lab.stop_prober()
    figures.update(_loops(lab))
    figures["errors"] = _errors(lab)
    return figures
