"""The cost of ``--allow-from`` on delivery: from_link (open + deliver to the TUN) without an
allow-list, with one that allows the sender, and the cost of refusing (one that does not).

    PYTHONPATH=src python bench/allow_list.py [--packets N] [--runs 7]

1400-byte packets from one source in batches of 64, as bench/dataplane.py sends them; the three
cases interleaved in every run, medians printed and written to bench/results/allow_list.json.
Target: allowing costs nothing measurable (the check runs once per source and batch, never per
packet), and refusing is cheaper than delivering (no decryption).
"""

from __future__ import annotations

import statistics
import time

from dataplane import BATCH, SIZE, StaticRouter, identity, sealed_batches
from mycelium.allow import AllowList
from mycelium.crypto import KeyCache
from mycelium.dataplane import DataPlane
from mycelium.subnet import Subnet
from runner import argument_parser, report


def main() -> None:
    parser = argument_parser(__doc__, "allow_list")
    parser.add_argument("--packets", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    a, b, c = identity("bench a"), identity("bench b"), identity("bench c")
    batches = sealed_batches(a, b, args.packets)
    packets = sum(map(len, batches))
    cases = {
        "no_list": None,
        "sender_allowed": [a.subnet],
        "sender_refused": [c.subnet],
    }

    def run(rules: list[Subnet] | None) -> float:
        plane = DataPlane(b, StaticRouter(b, a), KeyCache(b.secret))
        plane.allow = None if rules is None else AllowList(rules, b.subnet)
        started = time.perf_counter()
        for batch in batches:
            plane.from_link(batch, 0.0)
            plane.take_to_tun()
        return packets / (time.perf_counter() - started)

    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, rules in cases.items():
            runs[name].append(run(rules))
    result: dict[str, object] = {"packets": packets, "packet_size": SIZE, "batch": BATCH}
    for name, values in runs.items():
        result[f"{name}_pps"] = round(statistics.median(values))
        result[f"{name}_runs"] = [round(v) for v in values]
    base = statistics.median(runs["no_list"])
    result["allowed_vs_no_list"] = round(statistics.median(runs["sender_allowed"]) / base, 3)
    report(result, args.out, show=True)


if __name__ == "__main__":
    main()
