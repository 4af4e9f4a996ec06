"""NAT traversal in the netns lab (root, nftables): how long traffic takes to get a direct link,
and the round trip through the relay against the one over the punched link, in the same run.

    python bench/nat.py [--runs 3] [--pings 200]

Each run builds the lab of tests/netns/nat_lab.py twice, in turn: once with
--disable-hole-punching on both LAN nodes (every packet through the public node), once without
(time from the first ping to the first reply over the direct link, then the round trip over it).
Pings go every 20 ms. With MYCELIUM_REFERENCE_BIN set the public node is the reference. The lab
has no propagation delay (no netem here): the round trips are the nodes' own processing. Writes
bench/results/nat.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from netns.harness import Network
from netns.nat_lab import DIRECT_TTL, REFERENCE, RELAYED_TTL, build_lab, ping_stream, wait_mapping


def one(punching: bool, pings: int) -> dict[str, float | None]:
    net = Network(prefix=f"nb{os.getpid() % 1000}-", workdir=Path(tempfile.mkdtemp()))
    lab = None
    try:
        lab = build_lab(net, extra=() if punching else ("--disable-hole-punching",))
        a, b = lab.nodes(("a", "10.0.1.2"), ("b", "10.0.2.2"))
        to_direct = None
        if punching:
            wait_mapping(lab, a)
            wait_mapping(lab, b)
            started = time.time()
            first = ping_stream(a.ns, b.address, count=1000, interval=0.02, until=DIRECT_TTL)
            direct = [r for r in first if r.ttl == DIRECT_TTL]
            to_direct = direct[0].at - started if direct else None
        else:
            net.wait_ping(a.ns, b.address)
        replies = ping_stream(a.ns, b.address, count=pings, interval=0.02)
        ttl = DIRECT_TTL if punching else RELAYED_TTL
        rtts = [r.rtt_ms for r in replies if r.ttl == ttl]
        return {
            "to_direct_s": to_direct,
            "rtt_median_ms": statistics.median(rtts) if rtts else None,
            "replies": len(rtts),
        }
    finally:
        if lab is not None and lab.stun is not None:
            lab.stun.kill()
            lab.stun.wait()
        net.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pings", type=int, default=200)
    args = parser.parse_args()
    relayed, punched = [], []
    for run in range(args.runs):
        relayed.append(one(False, args.pings))
        punched.append(one(True, args.pings))
        print(f"run {run + 1}: relay {relayed[-1]}  punched {punched[-1]}", flush=True)

    def median(rows: list[dict[str, float | None]], key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.median(values) if values else None  # type: ignore[type-var]

    result = {
        "relay": "reference" if REFERENCE else "pymycelium",
        "runs": args.runs,
        "time_to_direct_s": median(punched, "to_direct_s"),
        "rtt_relayed_ms": median(relayed, "rtt_median_ms"),
        "rtt_direct_ms": median(punched, "rtt_median_ms"),
        "per_run": {"relayed": relayed, "punched": punched},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "per_run"}, indent=2))
    out = Path(__file__).parent / "results" / "nat.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
