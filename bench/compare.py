"""Our data plane against the reference's, measured in one run on one machine.

Starts one node pair per configuration (two namespaces joined by a veth, one node each, MTU 1400)
and then, round after round, runs the same iperf3 TCP transfer across each pair in turn (the order
rotates per round), so that every configuration sees the same share of a busy machine. Figures:
throughput, TCP retransmits, RTT idle and under load (p50, p99), node CPU seconds per GB carried,
TUN TX drops on the sender, resident memory at rest and after the run; medians over the rounds and
the ratios ours/reference, twice: of the medians, and paired (the median over the rounds of each
round's own ratio, which a machine that speeds up or slows down between rounds moves less). The
idle RTT is measured three ways: on a quiet machine (before any
transfer, the other pairs' nodes stopped), at the start of each round (a transfer has just ended),
and then with every CPU kept from halting (``pair.cpus_awake``), which separates the machine's
wake-up cost from per-packet work. On the quiet machine it is measured twice: pings 20 ms apart,
and a plain ``ping``'s one second apart (what a user sees; the CPUs sleep deeper in between).

With ``MYCELIUM_REFERENCE_BIN`` naming a reference ``mycelium`` binary the reference pairs run
too; without it, ours alone. Ours is ``MYCELIUM_BIN`` or else the ``mycelium`` on ``PATH``: from
``pip install .`` it runs the compiled data plane, from an editable install the Python source
(docs/architecture.md §6); the report says which, and which Python runs it (its build matters,
docs/architecture.md §6). Needs root, iperf3 and iputils ping.

    MYCELIUM_REFERENCE_BIN=/path/to/mycelium python bench/compare.py [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import pair
from runner import argument_parser, median, ratio, report, rotated, summarise_rounds

REFERENCE = os.environ.get("MYCELIUM_REFERENCE_BIN", "")
OURS = pair.MYCELIUM

#: label -> (link protocol, receiver binary, sender binary); "ref" is the reference binary.
CONFIGS: dict[str, tuple[str, str, str]] = {
    "ref-tcp": ("tcp", "ref", "ref"),
    "ours-tcp": ("tcp", "ours", "ours"),
    "ref-quic": ("quic", "ref", "ref"),
    "ours-quic": ("quic", "ours", "ours"),
    "ours-to-ref-quic": ("quic", "ref", "ours"),
    "ref-to-ours-quic": ("quic", "ours", "ref"),
    "ours-to-ref-tcp": ("tcp", "ref", "ours"),
    "ref-to-ours-tcp": ("tcp", "ours", "ref"),
}
DEFAULT = ["ref-tcp", "ours-tcp", "ref-quic", "ours-quic"]
#: Pings one second apart per pair and round on the quiet machine. The other pairs stand
#: stopped meanwhile, and our node finds a neighbour silent for 10 s dead (docs/routing.md):
#: a block must stay well short of that, or its link reconnects and stalls the next pings.
SLOW_PINGS = 6
FIGURES = [
    "gbit_s",
    "retransmits",
    "rtt_idle_ms",
    "rtt_idle_awake_ms",
    "rtt_load_p50_ms",
    "rtt_load_p99_ms",
    "node_cpu_s_per_gb",
    "sender_tun_tx_dropped",
    "rss_mb",
]


def binary(kind: str) -> str:
    return REFERENCE if kind == "ref" else OURS


def ratios(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ref, tcp, quic = summary.get("ref-tcp"), summary.get("ours-tcp"), summary.get("ours-quic")
    out: dict[str, Any] = {}
    if ref and tcp:
        out["tcp_throughput_ours_over_ref"] = ratio(tcp["gbit_s"], ref["gbit_s"])
        out["tcp_cpu_per_gb_ours_over_ref"] = ratio(
            tcp["node_cpu_s_per_gb"], ref["node_cpu_s_per_gb"]
        )
        out["tcp_rtt_load_p99_ours_over_ref"] = ratio(
            tcp["rtt_load_p99_ms"], ref["rtt_load_p99_ms"]
        )
        for key in ("rtt_quiet_ms", "rtt_quiet_1s_ms", "rtt_idle_ms", "rtt_idle_awake_ms"):
            if tcp[key] is not None and ref[key] is not None:
                name = key.removeprefix("rtt_").removesuffix("_ms")
                out[f"tcp_rtt_{name}_ours_minus_ref_ms"] = round(tcp[key] - ref[key], 3)
        out["rss_at_rest_ours_over_ref"] = ratio(tcp["rss_at_rest_mb"], ref["rss_at_rest_mb"])
    if tcp and quic:
        out["quic_over_tcp_ours"] = ratio(quic["gbit_s"], tcp["gbit_s"])
    return out


def paired_ratios(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per figure, the median over the rounds of that round's ratio: within a round the pairs
    run back to back, so each ratio compares them on the machine as it was then."""
    out: dict[str, Any] = {}
    wanted = [
        ("tcp_throughput_ours_over_ref_paired", "ours-tcp", "ref-tcp", "gbit_s"),
        ("tcp_cpu_per_gb_ours_over_ref_paired", "ours-tcp", "ref-tcp", "node_cpu_s_per_gb"),
        ("quic_over_tcp_ours_paired", "ours-quic", "ours-tcp", "gbit_s"),
    ]
    for name, over, under, key in wanted:
        found = [
            value
            for a, b in zip(runs.get(over, []), runs.get(under, []), strict=False)
            if (value := ratio(a.get(key), b.get(key))) is not None
        ]
        if found:
            out[name] = round(median(found), 3)
    return out


def quiet_medians(
    pairs: dict[str, pair.Pair], labels: list[str], rounds: int, count: int, interval: float
) -> dict[str, list[float]]:
    """Per pair, the median RTT of each round's block of pings, the other pairs' nodes
    stopped during each block (the order of the pairs rotates per round)."""
    found: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        for label in rotated(labels, r):
            others = [pid for other in labels if other != label for pid in pairs[other].pids]
            with pair.stopped(others):
                rtts = pair.ping_rtts(pairs[label], count, interval)
            if rtts:
                found[label].append(median(rtts))
    return found


def main() -> None:
    p = argument_parser(__doc__, "compare")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument(
        "--configs",
        nargs="+",
        choices=sorted(CONFIGS),
        default=None,
        help=f"default: {' '.join(DEFAULT)} (only ours-* without MYCELIUM_REFERENCE_BIN)",
    )
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/compare.py needs root (network namespaces)")
    labels = args.configs or DEFAULT
    ours = pair.runtime(OURS)
    if ours is None:
        print(f"ours: {OURS} (its interpreter cannot tell what it runs)")
    else:
        print(
            f"ours: {OURS} (Python {ours['python_version']} at {ours['python']}, "
            f"compiled data plane: {ours['compiled']})"
        )
    if not (REFERENCE and os.access(REFERENCE, os.X_OK)):
        print("MYCELIUM_REFERENCE_BIN not set: measuring ours alone")
        labels = [label for label in labels if "ref" not in label]
    pairs: dict[str, pair.Pair] = {}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    at_rest: dict[str, float] = {}
    try:
        for i, label in enumerate(labels):
            proto, kind_a, kind_b = CONFIGS[label]
            pairs[label] = pair.start(
                label,
                proto,
                binary_a=binary(kind_a),
                binary_b=binary(kind_b),
                prefix=f"bc{os.getpid() % 1000}{i}-",
            )
        time.sleep(3)  # let start-up work (imports, key exchange, first updates) settle
        for label, running in pairs.items():
            at_rest[label] = pair.idle_rss_mb(running)
        # Idle RTT on a quiet machine, pairs interleaved: before any transfer (one that just
        # ended leaves the CPUs warm), and with the other pairs' nodes stopped meanwhile (their
        # timers and keepalives wake the CPUs too: with them running, one run put our idle RTT
        # below the reference's).
        quiet = quiet_medians(pairs, labels, args.rounds, pair.IDLE_PINGS, 0.02)
        quiet_1s = quiet_medians(pairs, labels, args.rounds, SLOW_PINGS, 1.0)
        for r in range(args.rounds):
            for label in rotated(labels, r):
                try:
                    result = pair.bulk(pairs[label], args.seconds)
                except Exception as exc:  # a failing configuration must not stop the others
                    result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                runs[label].append(result)
                shown = {k: result.get(k) for k in FIGURES} if "error" not in result else result
                print(f"round {r + 1} {label:18} {shown}", flush=True)
    finally:
        for running in pairs.values():
            running.close()
    summary = {label: summarise_rounds(results, FIGURES) for label, results in runs.items()}
    for label in summary:
        summary[label]["rss_at_rest_mb"] = round(at_rest.get(label, 0.0), 1)
        summary[label]["rtt_quiet_ms"] = round(median(quiet[label]), 3) if quiet[label] else None
        summary[label]["rtt_quiet_1s_ms"] = (
            round(median(quiet_1s[label]), 3) if quiet_1s[label] else None
        )
    print()
    print(f"{'median of ' + str(args.rounds) + ' rounds':18}", *(f"{k:>14}" for k in FIGURES))
    for label, figures in summary.items():
        print(f"{label:18}", *(f"{figures[k]!s:>14}" for k in FIGURES))
    print()
    for label, figures in summary.items():
        rest, quiet_rtt = figures["rss_at_rest_mb"], figures["rtt_quiet_ms"]
        print(
            f"{label:18} at rest: {rest} MB, idle RTT on a quiet machine: {quiet_rtt} ms, "
            f"pings 1 s apart: {figures['rtt_quiet_1s_ms']} ms"
        )
    print()
    found = ratios(summary) | paired_ratios(runs)
    for key, value in found.items():
        print(f"{key:36} {value}")
    report(
        {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "mtu": 1400,
            "reference": REFERENCE or None,
            "ours": OURS,
            "ours_runtime": ours,
            "summary": summary,
            "ratios": found,
            "runs": runs,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
