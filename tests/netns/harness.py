"""Real networks on one machine: network namespaces joined by veth pairs, a real ``mycelium``
process in each. Everything created is torn down in ``close()``, even after a failure."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from mycelium.identity import Identity, save_key_file

#: Our node: ``MYCELIUM_BIN`` if set (a non-editable install, whose data plane is compiled), else
#: the ``mycelium`` on PATH.
MYCELIUM = os.environ.get("MYCELIUM_BIN") or shutil.which("mycelium") or "mycelium"


def run(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=timeout)


@dataclass
class NodeProcess:
    ns: str
    identity: Identity
    key_file: Path
    log_file: Path
    args: list[str]
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return self.identity.address_text

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@dataclass
class Network:
    prefix: str
    workdir: Path
    namespaces: list[str] = field(default_factory=list)
    nodes: dict[str, NodeProcess] = field(default_factory=dict)
    etc_dirs: list[Path] = field(default_factory=list)
    _links: int = 0

    # --- topology ---------------------------------------------------------------------------
    def ns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        run("ip", "netns", "add", full)
        self.namespaces.append(full)
        self.exec(full, "ip", "link", "set", "lo", "up")
        return full

    def link(self, a: str, b: str, delay_ms: float | None = None) -> tuple[str, str, str, str]:
        """A veth pair between namespaces a and b with fd00:<n>::1/::2; returns (ifa, ifb,
        addr_a, addr_b)."""
        self._links += 1
        n = self._links
        ifa, ifb = f"v{n}a", f"v{n}b"
        tmp_a, tmp_b = f"{self.prefix[:6]}{n}a", f"{self.prefix[:6]}{n}b"
        run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        run("ip", "link", "set", tmp_a, "netns", a, "name", ifa)
        run("ip", "link", "set", tmp_b, "netns", b, "name", ifb)
        addr_a, addr_b = f"fd00:{n:x}::1", f"fd00:{n:x}::2"
        for ns, ifname, addr in ((a, ifa, addr_a), (b, ifb, addr_b)):
            # Keep the address across `ip link set down` (tests cut links that way).
            self.exec(ns, "sysctl", "-qw", f"net.ipv6.conf.{ifname}.keep_addr_on_down=1")
            self.exec(ns, "ip", "-6", "addr", "add", f"{addr}/64", "dev", ifname, "nodad")
            self.exec(ns, "ip", "link", "set", ifname, "up")
            if delay_ms:
                self.exec(
                    ns,
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    ifname,
                    "root",
                    "netem",
                    "delay",
                    f"{delay_ms}ms",
                )
        return ifa, ifb, addr_a, addr_b

    def hosts(self, ns: str, entries: dict[str, str]) -> None:
        """/etc/hosts as processes in ``ns`` see it (``ip netns exec`` mounts
        /etc/netns/<ns>/hosts over it); rewritten in place, so running processes see changes.
        Removed in ``close()``."""
        directory = Path("/etc/netns") / ns
        directory.mkdir(parents=True, exist_ok=True)
        self.etc_dirs.append(directory)
        text = "".join(f"{address} {name}\n" for name, address in entries.items())
        with open(directory / "hosts", "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n" + text)

    def exec(self, ns: str, *cmd: str, check: bool = True, timeout: float = 30):
        return run("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    # --- nodes ------------------------------------------------------------------------------
    def start_node(
        self,
        ns: str,
        peers: list[str] = (),
        *extra: str,
        identity: Identity | None = None,
        binary: str = MYCELIUM,
        debug: bool = True,
    ) -> NodeProcess:
        """Start a node (ours, or any binary taking the reference's flags) in ``ns``; ``debug``
        passes ``--debug`` (benchmarks leave it off)."""
        old = self.nodes.get(ns)
        identity = identity or (old.identity if old else Identity.generate())
        key_file = self.workdir / f"{ns}.key"
        save_key_file(identity, key_file)
        log_file = self.workdir / f"{ns}.log"
        args = [binary, "-k", str(key_file), *(["--debug"] if debug else []), *extra]
        if peers:
            args += ["--peers", *peers]
        node = NodeProcess(ns, identity, key_file, log_file, args)
        with open(log_file, "ab") as log:
            node.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.nodes[ns] = node
        return node

    def wait_tun(self, node: NodeProcess, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc is not None and node.proc.poll() is not None:
                raise AssertionError(f"node in {node.ns} exited:\n{node.log()}")
            out = self.exec(
                node.ns, "ip", "-j", "-6", "addr", "show", "dev", "mycelium", check=False
            )
            if out.returncode == 0 and node.address in out.stdout:
                return
            time.sleep(0.2)
        raise AssertionError(f"TUN of {node.ns} not up in {timeout}s:\n{node.log()}")

    def wait_listening(self, node: NodeProcess, port: int = 9651, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc is not None and node.proc.poll() is not None:
                raise AssertionError(f"node in {node.ns} exited:\n{node.log()}")
            out = self.exec(node.ns, "ss", "-Htln", f"sport = :{port}", check=False)
            if out.stdout.strip():
                return
            time.sleep(0.2)
        raise AssertionError(f"{node.ns} not listening in {timeout}s:\n{node.log()}")

    def ping(self, ns: str, address: str, count: int = 1, wait: float = 2) -> bool:
        out = self.exec(
            ns,
            "ping",
            "-6",
            "-n",
            "-c",
            str(count),
            "-W",
            str(wait),
            address,
            check=False,
            timeout=count * wait + 10,
        )
        return out.returncode == 0

    def wait_ping(self, ns: str, address: str, timeout: float = 30) -> float:
        """Seconds until the first successful ping; AssertionError after ``timeout``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.ping(ns, address, wait=1):
                return time.monotonic() - start
        logs = "\n".join(f"--- {n.ns}\n{n.log()}" for n in self.nodes.values())
        raise AssertionError(f"{ns} cannot ping {address} after {timeout}s\n{logs}")

    def kill(self, node: NodeProcess, sig: int = signal.SIGTERM) -> int | None:
        if node.proc is None:
            return None
        if node.proc.poll() is None:
            node.proc.send_signal(sig)
            try:
                node.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(timeout=5)
        return node.proc.returncode

    def close(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                self.kill(node, signal.SIGKILL)
        for ns in self.namespaces:
            pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run("ip", "netns", "del", ns, check=False)
        for directory in self.etc_dirs:
            shutil.rmtree(directory, ignore_errors=True)


def overlay_route_table(net: Network, node: NodeProcess) -> list[dict]:
    """The node's selected routes through its REST API (empty when the API is not there)."""
    out = net.exec(
        node.ns,
        sys.executable,
        "-c",
        "import json,urllib.request;print(urllib.request.urlopen("
        "'http://127.0.0.1:8989/api/v1/admin/routes/selected',timeout=2).read().decode())",
        check=False,
    )
    try:
        return json.loads(out.stdout)
    except ValueError:
        return []


def link_local(ns_addr: str) -> str:
    return str(ipaddress.IPv6Address(ns_addr))


def ping_ttl(net: Network, ns: str, address: str, wait: float = 2) -> int | None:
    """Hop limit of one echo reply (64 - (overlay links + 1) over the overlay), or None."""
    out = net.exec(
        ns, "ping", "-6", "-n", "-c", "1", "-W", str(wait), address, check=False, timeout=wait + 10
    )
    for word in out.stdout.split():
        if word.startswith("ttl="):
            return int(word[4:])
    return None


def wait_until(check, timeout: float, interval: float = 0.5):  # type: ignore[no-untyped-def]
    """Poll ``check()`` until it returns something truthy; that value, or None after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None


_HOPS_RECEIVER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
s.bind(("::", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))
print("ready", flush=True)
try:
    _, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(4))
    print(int.from_bytes(anc[0][2], sys.byteorder), flush=True)
except TimeoutError:
    print("none", flush=True)
"""

_HOPS_SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
for _ in range(int(float(sys.argv[3]) / 0.2)):
    s.sendto(b"hop", (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.2)
"""


def forward_links(net: Network, src: NodeProcess, dst: NodeProcess, wait: float = 3) -> int | None:
    """Overlay links a packet from ``src`` to ``dst`` crosses (from the hop limit it arrives
    with: 64 at the origin becomes 64 - (links + 1)), or None if nothing arrived."""
    port = "45678"
    receiver = subprocess.Popen(
        ["ip", "netns", "exec", dst.ns, sys.executable, "-c", _HOPS_RECEIVER, port, str(wait)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None
        receiver.stdout.readline()
        net.exec(
            src.ns,
            sys.executable,
            "-c",
            _HOPS_SENDER,
            dst.address,
            port,
            str(wait),
            check=False,
            timeout=wait + 10,
        )
        line = receiver.stdout.readline().strip()
    finally:
        receiver.kill()
        receiver.wait(timeout=5)
    return 63 - int(line) if line.isdigit() else None


_SINK = textwrap.dedent(
    """
    import hashlib, socket
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 5001)); s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept(); h = hashlib.sha256(); n = 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b); n += len(b)
    print(n, h.hexdigest(), flush=True)
    """
)

_SOURCE = textwrap.dedent(
    """
    import hashlib, os, socket, sys
    data = os.urandom(int(sys.argv[2]))
    c = socket.create_connection((sys.argv[1], 5001), timeout=60)
    c.sendall(data); c.close()
    print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
    """
)


def tcp_transfer(
    net: Network, src_ns: str, dst_ns: str, address: str, size: int
) -> tuple[list[str], list[str]]:
    """Send ``size`` random bytes over TCP from ``src_ns`` to ``address`` (in ``dst_ns``):
    ([length, sha256] sent, [length, sha256] received)."""
    sink = spawn_ready(dst_ns, _SINK)
    try:
        sent = net.exec(
            src_ns, sys.executable, "-c", _SOURCE, address, str(size), timeout=120
        ).stdout.split()
        received = sink.communicate(timeout=60)[0].split()
    finally:
        sink.kill()
        sink.wait()
    assert sent[0] == str(size) and len(sent[1]) == 64, sent
    return sent, received


def spawn_script(ns: str, script: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Run a Python ``script`` in ``ns``; returns it once it printed its first line, and that
    line (helper scripts announce readiness, or what a test needs to know, there)."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def spawn_ready(ns: str, script: str, *args: str, ready: str = "ready") -> subprocess.Popen[str]:
    """``spawn_script`` for a script whose first line must be ``ready`` (killed otherwise)."""
    proc, first = spawn_script(ns, script, *args)
    if first != ready:
        proc.kill()
        proc.wait()
        raise AssertionError(f"expected {ready!r} first, got {first!r}")
    return proc
