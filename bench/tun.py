"""TUN syscall cost (root only): 1400-byte packets written to and read back from the device.

    PYTHONPATH=src python bench/tun.py [--packets N] [--runs 5]

Runs in a throw-away network namespace (``mtun-bench-*``). We write ICMPv6 echo requests
addressed to the node's own overlay address; the kernel answers each with an echo reply that we
read back. The figure is the cost of one TUN write plus one TUN read per packet, i.e. what the
data plane pays per packet at the host boundary without IFF_VNET_HDR. Writes JSON to
bench/results/tun.json.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from runner import argument_parser, median, report

CHILD = r"""
import json, select, sys, time
from mycelium.dataplane import icmp
from mycelium.identity import Identity
from mycelium.tun import TunDevice

n, runs = int(sys.argv[1]), int(sys.argv[2])
ident = Identity.from_secret(bytes(range(32)))
peer = bytes.fromhex("05ff0000000000000000000000000001")
body = bytes(1400 - 48)
packets = [icmp.icmpv6_packet(peer, ident.address, 64, 128, 0, body, rest=(i & 0xFFFFFFFF)
           .to_bytes(4, "big")) for i in range(64)]
results = []
with TunDevice.open("mycelium", ident.address) as tun:
    time.sleep(0.2)
    tun.read_batch(1000)
    for _ in range(runs):
        got = written = 0
        t_write = t_read = 0.0
        while got < n:
            t0 = time.perf_counter()
            written += tun.write_batch(packets)
            t1 = time.perf_counter()
            select.select([tun], [], [], 0.5)
            t2 = time.perf_counter()
            replies = tun.read_batch(256)
            t3 = time.perf_counter()
            got += sum(1 for p in replies if len(p) == 1400)
            t_write += t1 - t0
            t_read += t3 - t2
        results.append({"write_us": 1e6 * t_write / written, "read_us": 1e6 * t_read / got,
                        "write_errors": tun.write_errors})
print(json.dumps(results))
"""


def main() -> None:
    parser = argument_parser(__doc__, "tun")
    parser.add_argument("--packets", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/tun.py needs root (it creates a network namespace and a TUN device)")
    ns = f"mtun-bench-{secrets.token_hex(3)}"
    src = Path(__file__).resolve().parents[1] / "src"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-c",
                CHILD,
                str(args.packets),
                str(args.runs),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(src)),
        ).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    runs = json.loads(out)
    result = {
        "packets": args.packets,
        "packet_size": 1400,
        "write_us_per_packet": round(median(r["write_us"] for r in runs), 3),
        "read_us_per_packet": round(median(r["read_us"] for r in runs), 3),
        "runs": runs,
    }
    report(result, args.out, show=True)


if __name__ == "__main__":
    main()
