"""TCP throughput across the overlay between two nodes in two network namespaces (iperf3, 10 s),
with the raw veth measured in the same run as the baseline. Needs root and iperf3.

    python bench/throughput.py [--seconds 10] [--runs 3] [--transport tcp|quic|tls]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from netns.harness import MYCELIUM, Network


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far (robust on a shared, busy machine)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def iperf(net: Network, server_ns: str, client_ns: str, address: str, seconds: float) -> float:
    """Receiver-side Gbit/s of one iperf3 TCP run."""
    server = net.exec(server_ns, "iperf3", "-s", "-D", "-1", "-p", "5201", check=False)
    assert server.returncode == 0, server.stderr
    time.sleep(0.3)
    out = net.exec(
        client_ns,
        "iperf3",
        "-c",
        address,
        "-p",
        "5201",
        "-t",
        str(seconds),
        "-J",
        timeout=seconds + 30,
    )
    result = json.loads(out.stdout)
    return result["end"]["sum_received"]["bits_per_second"] / 1e9


def profiled(binary: str, out: Path, wrapper: Path) -> str:
    """A wrapper script running ``binary`` (a Python console script) under cProfile."""
    out.parent.mkdir(parents=True, exist_ok=True)
    script = shutil.which(binary) or binary
    wrapper.write_text(
        f'#!/bin/sh\nexec {sys.executable} -m cProfile -o {out.resolve()} {script} "$@"\n'
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--transport",
        choices=["tcp", "quic", "tls"],
        default="tcp",
        help="tls runs both nodes as mycelium-private with a shared key",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run both nodes under cProfile and write a.prof/b.prof into this directory",
    )
    args = parser.parse_args()
    args.out = args.out or Path(f"bench/results/throughput_{args.transport}.json")
    with tempfile.TemporaryDirectory() as tmp:
        net = Network(prefix=f"bt{os.getpid() % 10000}-", workdir=Path(tmp))
        try:
            a, b = net.ns("a"), net.ns("b")
            _, _, addr_a, _ = net.link(a, b)
            extra: list[str] = ["--disable-peer-discovery"]
            binary = MYCELIUM
            if args.transport == "tls":
                key = Path(tmp) / "net.key"
                key.write_bytes(os.urandom(32))
                extra += ["--network-name", "bench", "--network-key-file", str(key)]
                binary = shutil.which("mycelium-private") or "mycelium-private"
            proto = "quic" if args.transport == "quic" else "tcp"
            bin_a = bin_b = binary
            if args.profile is not None:
                bin_a = profiled(binary, args.profile / "a.prof", Path(tmp) / "a.sh")
                bin_b = profiled(binary, args.profile / "b.prof", Path(tmp) / "b.sh")
            na = net.start_node(a, [], *extra, binary=bin_a)
            nb = net.start_node(b, [f"{proto}://[{addr_a}]:9651"], *extra, binary=bin_b)
            net.wait_tun(na)
            net.wait_tun(nb)
            net.wait_ping(b, na.address, timeout=30)
            raw, overlay, cpu = [], [], []
            pids = [n.proc.pid for n in (na, nb) if n.proc is not None]
            for _ in range(args.runs):
                raw.append(iperf(net, a, b, addr_a, args.seconds))
                before = cpu_seconds(pids)
                overlay.append(iperf(net, a, b, na.address, args.seconds))
                gbytes = overlay[-1] * args.seconds / 8
                cpu.append((cpu_seconds(pids) - before) / gbytes)
            for node in (na, nb):
                net.kill(node)  # SIGTERM: a clean exit, so cProfile writes its file
        finally:
            net.close()
    result = {
        "seconds_per_run": args.seconds,
        "runs": args.runs,
        "raw_veth_gbit_s": [round(x, 3) for x in raw],
        "overlay_gbit_s": [round(x, 3) for x in overlay],
        "raw_veth_median_gbit_s": round(statistics.median(raw), 3),
        "overlay_median_gbit_s": round(statistics.median(overlay), 3),
        "ratio_overlay_to_raw": round(statistics.median(overlay) / statistics.median(raw), 4),
        # CPU seconds both nodes spent per GB carried (includes iperf3 start-up idle time).
        "node_cpu_s_per_gbyte": [round(x, 2) for x in cpu],
        "node_cpu_s_per_gbyte_median": round(statistics.median(cpu), 2),
        "mtu": 1400,
        "transport": args.transport,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
