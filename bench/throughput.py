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
    args = parser.parse_args()
    args.out = args.out or Path(f"bench/results/throughput_{args.transport}.json")
    with tempfile.TemporaryDirectory() as tmp:
        net = Network(prefix="bt-", workdir=Path(tmp))
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
            na = net.start_node(a, [], *extra, binary=binary)
            nb = net.start_node(b, [f"{proto}://[{addr_a}]:9651"], *extra, binary=binary)
            net.wait_tun(na)
            net.wait_tun(nb)
            net.wait_ping(b, na.address, timeout=30)
            raw, overlay = [], []
            for _ in range(args.runs):
                raw.append(iperf(net, a, b, addr_a, args.seconds))
                overlay.append(iperf(net, a, b, na.address, args.seconds))
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
        "mtu": 1400,
        "transport": args.transport,
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
