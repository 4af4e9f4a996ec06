"""What relaying costs: a line of three nodes, ``a <- b <- c`` (c dials b, b dials a, TCP links,
each in its own namespace, veths between), and iperf3 TCP from c to a across the overlay. The
middle node only forwards: it never opens the packets it carries, as a public node does for
everyone's traffic.

One line per configuration, all started first, then round after round the same transfer across
each line in turn (the order rotates per round). Figures: throughput, TCP retransmits, the relay's
CPU seconds per GB carried, the two ends' CPU seconds per GB; medians over the rounds and the
ratios ours/reference.

Configurations: ``ours`` (three of ours), ``ref`` (three reference nodes, with
``MYCELIUM_REFERENCE_BIN``), ``ours-relays-ref`` (reference ends, our node in the middle: our relay
carrying the reference's traffic). Needs root and iperf3.

    MYCELIUM_REFERENCE_BIN=/path/to/mycelium python bench/relay.py [--rounds 5] [--seconds 6]
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pair
from netns.harness import Network, NodeProcess
from runner import argument_parser, cpu_seconds, ratio, report, rotated, summarise_rounds

REFERENCE = os.environ.get("MYCELIUM_REFERENCE_BIN", "")
#: label -> (ends, relay): "ref" is the reference binary, "ours" ours.
CONFIGS: dict[str, tuple[str, str]] = {
    "ref": ("ref", "ref"),
    "ours": ("ours", "ours"),
    "ours-relays-ref": ("ref", "ours"),
}
FIGURES = ["gbit_s", "retransmits", "relay_cpu_s_per_gb", "ends_cpu_s_per_gb"]


@dataclass
class Line:
    net: Network
    tmp: tempfile.TemporaryDirectory[str]
    a: NodeProcess
    relay: NodeProcess
    c: NodeProcess

    def close(self) -> None:
        try:
            self.net.close()
        finally:
            self.tmp.cleanup()


def start(index: int, ends: str, relay: str) -> Line:
    tmp = tempfile.TemporaryDirectory()
    net = Network(prefix=f"br{os.getpid() % 1000}{index}-", workdir=Path(tmp.name))
    try:
        ns_a, ns_b, ns_c = net.ns("a"), net.ns("b"), net.ns("c")
        _, _, addr_a, _ = net.link(ns_a, ns_b)
        _, _, addr_b, _ = net.link(ns_b, ns_c)
        flags = ("--disable-peer-discovery",)
        a = net.start_node(ns_a, [], *flags, binary=ends, debug=False)
        b = net.start_node(ns_b, [f"tcp://[{addr_a}]:9651"], *flags, binary=relay, debug=False)
        c = net.start_node(ns_c, [f"tcp://[{addr_b}]:9651"], *flags, binary=ends, debug=False)
        for node in (a, b, c):
            net.wait_tun(node)
        net.wait_ping(ns_c, a.address, timeout=40)
        return Line(net, tmp, a, b, c)
    except BaseException:
        net.close()
        tmp.cleanup()
        raise


def pid(node: NodeProcess) -> int:
    assert node.proc is not None
    return node.proc.pid


def transfer(line: Line, seconds: float) -> dict[str, Any]:
    """One iperf3 TCP run from c to a, across the relay."""
    with pair.iperf3_server(line.a.ns):
        relay0, ends0 = cpu_seconds([pid(line.relay)]), cpu_seconds([pid(line.a), pid(line.c)])
        command = ["iperf3", "-c", line.a.address, "-p", "5201", "-t", str(seconds), "-J"]
        done = line.net.exec(line.c.ns, *command, check=False, timeout=seconds + 60)
        relay1, ends1 = cpu_seconds([pid(line.relay)]), cpu_seconds([pid(line.a), pid(line.c)])
    result = json.loads(done.stdout)
    if "error" in result:
        raise RuntimeError(f"iperf3: {result['error']}")
    end = result["end"]
    gbytes = end["sum_received"]["bytes"] / 1e9
    return {
        "gbit_s": round(end["sum_received"]["bits_per_second"] / 1e9, 3),
        "retransmits": end["sum_sent"].get("retransmits"),
        "relay_cpu_s_per_gb": round((relay1 - relay0) / gbytes, 2) if gbytes else None,
        "ends_cpu_s_per_gb": round((ends1 - ends0) / gbytes, 2) if gbytes else None,
    }


def main() -> None:
    p = argument_parser(__doc__, "relay")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=6.0)
    args = p.parse_args()
    binaries = {"ours": pair.MYCELIUM, "ref": REFERENCE}
    labels = list(CONFIGS)
    if not (REFERENCE and os.access(REFERENCE, os.X_OK)):
        print("MYCELIUM_REFERENCE_BIN not set: measuring ours alone")
        labels = ["ours"]
    lines: dict[str, Line] = {}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    try:
        for i, label in enumerate(labels):
            ends, relay = CONFIGS[label]
            lines[label] = start(i, binaries[ends], binaries[relay])
        time.sleep(2)
        for r in range(args.rounds):
            for label in rotated(labels, r):
                try:
                    result = transfer(lines[label], args.seconds)
                except Exception as exc:  # a failing configuration must not stop the others
                    result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                runs[label].append(result)
                print(f"round {r + 1} {label:16} {result}", flush=True)
    finally:
        for line in lines.values():
            line.close()
    summary = {label: summarise_rounds(results, FIGURES) for label, results in runs.items()}
    print()
    print(f"{'median':16}", *(f"{k:>20}" for k in FIGURES))
    for label, figures in summary.items():
        print(f"{label:16}", *(f"{figures[k]!s:>20}" for k in FIGURES))
    ratios: dict[str, float | None] = {}
    for label in ("ours", "ours-relays-ref"):
        if label in summary and "ref" in summary:
            for key in ("gbit_s", "relay_cpu_s_per_gb"):
                ratios[f"{label}_{key}_over_ref"] = ratio(summary[label][key], summary["ref"][key])
    for key, value in ratios.items():
        print(f"{key:40} {value}")
    report(
        {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "reference": REFERENCE or None,
            "ours": pair.MYCELIUM,
            "ours_runtime": pair.runtime(pair.MYCELIUM),
            "summary": summary,
            "ratios": ratios,
            "runs": runs,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
