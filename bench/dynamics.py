"""Routing dynamics on real networks (issue 15): how soon every pair of nodes can ping after
start, after a link is silently cut and after a relay is killed; whether any probe looped;
messages across several hops; ERROR lines in the logs. Needs root.

Each round runs, for every variant in turn (interleaved, the order rotated each round):

- ring8: eight nodes in a ring with two chords, links alternating TCP and QUIC, all 56 ordered
  pairs probed every 100 ms: start-up, messages between the two nodes the most links apart, a
  silent cut of ring link 0 (``ip link set down`` on one side; healed, then restored), ``kill -9``
  of relay node 3;
- ring30: thirty nodes, the ring plus 15 seeded random chords, 60 sampled pairs: start-up only.

Variants: ``py`` (all ours), ``ref`` and ``mixed`` (alternating) when MYCELIUM_REFERENCE_BIN names
the reference binary, and ``py@NAME`` (and ``mixed@NAME``) for each ``--ours NAME=BINARY``
(another checkout's ``mycelium``, e.g. the commit an issue was measured on); ``--only`` picks.

    python bench/dynamics.py --rounds 5 --ours old=/path/to/old/.venv/bin/mycelium \
        --only py py@old ref mixed
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from netns import dynamics
from netns.harness import MYCELIUM, Network

COLUMN = 29
#: (label, pattern, binary of our nodes)
Variant = tuple[str, str, str]

ROWS = [
    ("ring8", "startup_s", "8 nodes: start until all 56 pairs ping"),
    ("ring8", "startup_stable_s", "8 nodes: start until all pairs ping continuously"),
    ("ring8", "ready_max_s", "8 nodes: start until the last node listens and dials"),
    ("ring8", "cut_heal_s", "silent cut of a ring link: until all pairs ping again"),
    ("ring8", "restore_direct_s", "link restored: until it carries its pair again"),
    ("ring8", "kill_heal_s", "kill -9 of a relay: until all pairs ping again"),
    ("ring8", "messages_ok", "messages both ways across the most hops"),
    ("ring8", "looped", "any probe looped (time exceeded / path too long)"),
    ("ring8", "py_error_lines", "ERROR lines in our nodes' logs"),
    ("ring8", "ref_error_lines", "ERROR lines in reference nodes' logs"),
    ("ring30", "startup_s", "30 nodes: start until 60 sampled pairs ping"),
    ("ring30", "ready_max_s", "30 nodes: start until the last node listens and dials"),
    ("ring30", "looped", "30 nodes: any probe looped"),
]


def flatten(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures a table row reads, from one scenario's nested result."""
    errors = figures.get("errors", {})
    ready = [t for t in figures.get("ready_s", []) if t is not None]
    flat = {
        "startup_s": figures.get("startup_s"),
        "startup_stable_s": figures.get("startup_stable_s"),
        "ready_max_s": max(ready) if ready else None,
        "restore_direct_s": figures.get("restore_direct_s"),
        "looped": figures.get("looped"),
    }
    for kind in ("py", "ref"):  # None (not shown) where there was no node of that kind
        if kind[0] in figures.get("kinds", ""):
            flat[f"{kind}_error_lines"] = sum(len(v) for v in errors.get(kind, {}).values())
    for event in ("cut", "kill"):
        if event in figures:
            flat[f"{event}_heal_s"] = figures[event]["heal_s"]
    if "messages" in figures:
        flat["messages_ok"] = not figures["messages"]["problems"]
    return flat


def cell(values: list[Any]) -> str:
    """Median [min-max] of numbers (n/a counts failed runs), or how many were true."""
    if not values:
        return "-"
    if all(isinstance(v, bool) for v in values):
        return f"{sum(values)}/{len(values)} yes"
    numbers = [v for v in values if v is not None]
    missed = len(values) - len(numbers)
    if not numbers:
        return f"timeout x{missed}"
    digits = 0 if all(isinstance(v, int) for v in numbers) else 1
    text = f"{statistics.median(numbers):.{digits}f}"
    if len(numbers) > 1:
        text += f" [{min(numbers):.{digits}f}-{max(numbers):.{digits}f}]"
    return text + (f" +{missed} timeout" if missed else "")


def table(rounds: list[dict[str, Any]], labels: list[str]) -> str:
    width = max(len(text) for _, _, text in ROWS) + 2
    lines = ["".ljust(width) + "".join(label.ljust(COLUMN) for label in labels)]
    for scenario, key, text in ROWS:
        cells = []
        for label in labels:
            values = [
                flatten(r["figures"]).get(key)
                for r in rounds
                if r["variant"] == label and r["scenario"] == scenario and "figures" in r
            ]
            cells.append(cell([v for v in values if v is not None or key.endswith("_s")]))
        if any(c != "-" for c in cells):
            lines.append(text.ljust(width) + "".join(c.ljust(COLUMN) for c in cells))
    return "\n".join(lines)


def run_one(variant: Variant, scenario: str, seed: int) -> dict[str, Any]:
    _, pattern, ours = variant
    with tempfile.TemporaryDirectory() as tmp:
        net = Network(prefix=f"bd{os.getpid() % 10000}-", workdir=Path(tmp))
        try:
            if scenario == "ring8":
                lab = dynamics.build(net, dynamics.eight_node(), pattern, ours)
                return dynamics.ring_round(lab)
            topology = dynamics.random_chords(30, 15, seed)
            lab = dynamics.build(net, topology, pattern, ours)
            return dynamics.startup_round(lab, topology.sample_pairs(60, seed))
        finally:
            net.close()


def variants(args: argparse.Namespace) -> list[Variant]:
    ours = [("", MYCELIUM)] + [(f"@{n}", b) for n, _, b in (s.partition("=") for s in args.ours)]
    chosen: list[Variant] = [(f"py{tag}", "py", binary) for tag, binary in ours]
    if dynamics.reference_available():
        chosen.append(("ref", "ref", MYCELIUM))
        chosen += [(f"mixed{tag}", "mixed", binary) for tag, binary in ours]
    return [v for v in chosen if not args.only or v[0] in args.only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ours",
        action="append",
        default=[],
        metavar="NAME=BINARY",
        help="also run networks with this mycelium binary as ours, labelled py@NAME, mixed@NAME",
    )
    parser.add_argument("--only", nargs="*", help="variant labels to run (default: all)")
    parser.add_argument("--scenarios", nargs="+", default=["ring8", "ring30"])
    parser.add_argument("--seed", type=int, default=1, help="chords and pairs of ring30")
    parser.add_argument("--out", type=Path, default=Path("bench/results/dynamics.json"))
    parser.add_argument("--table", type=Path, help="only print the table of a results file")
    args = parser.parse_args()
    if args.table is not None:
        saved = json.loads(args.table.read_text())
        print(table(saved["runs"], list(saved["variants"])))
        return
    chosen = variants(args)
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        shift = number % len(chosen)
        for variant in chosen[shift:] + chosen[:shift]:
            for scenario in args.scenarios:
                started = time.time()
                record: dict[str, Any] = {
                    "round": number,
                    "variant": variant[0],
                    "binary": variant[2] if variant[1] != "ref" else dynamics.REFERENCE,
                    "scenario": scenario,
                    "loadavg_before": os.getloadavg()[0],
                }
                try:
                    record["figures"] = run_one(variant, scenario, args.seed)
                except Exception as exc:  # a broken round is recorded, the others still run
                    record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
                record["wall_s"] = round(time.time() - started, 1)
                print(json.dumps(record), flush=True)
                rounds.append(record)
    labels = [v[0] for v in chosen]
    print(table(rounds, labels))
    here = Path(__file__).resolve().parent
    commit = subprocess.run(
        ["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    report = {
        "commit": commit or None,
        "rounds": args.rounds,
        "variants": {label: f"{pattern} with ours = {binary}" for label, pattern, binary in chosen},
        "reference": dynamics.REFERENCE or None,
        "table": table(rounds, labels).splitlines(),
        "runs": rounds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
