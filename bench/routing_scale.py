"""Routing at scale: random topologies (mean degree 4) on the simulator, all nodes joining at once.

For each size: wall time until every node has a selected route to every other node's /64, peak
RSS, router memory per route (RSS growth over the run divided by the route entries held), and
control traffic per node. Sizes the machine cannot finish within ``--budget`` seconds report how far
they got and an extrapolation from the measured delivery rate.

    python bench/routing_scale.py --sizes 1000 10000 --budget 300
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import time
from pathlib import Path

from mycelium.sim import Simulation, parse_spec
from mycelium.sim.checks import missing_routes

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def measure(n: int, degree: float, seed: int, budget: float) -> dict:
    topology = parse_spec(f"random:{n}:{degree}", random.Random(seed))
    sim = Simulation(topology, seed)
    gc.collect()
    rss_before = rss_bytes()
    started = time.perf_counter()
    sim.start()
    needed = n * (n - 1)
    converged_at = None
    step = 0.05
    while time.perf_counter() - started < budget:
        sim.run_until(sim.now + step)
        if missing_routes(sim) == 0:
            converged_at = sim.now
            break
        step = min(step * 1.5, 1.0)
        if sim.now > 120:
            break
    wall = time.perf_counter() - started
    selected = sum(
        1 for r in sim.routers for rl in r.table.lists.values() if rl.selected() is not None
    )
    entries = sum(len(rl.entries) for r in sim.routers for rl in r.table.lists.values())
    gc.collect()
    grown = rss_bytes() - rss_before
    result = {
        "nodes": n,
        "links": len(topology.links),
        "converged": converged_at is not None,
        "virtual_convergence_s": converged_at,
        "wall_s": round(wall, 2),
        "selected_routes": selected,
        "routes_needed": needed,
        "progress": round(selected / needed, 4),
        "route_entries": entries,
        "bytes_per_route_entry": round(grown / max(entries, 1), 1),
        "control_packets": sim.packets_sent,
        "control_bytes_per_node": round(sim.bytes_sent / n),
        "packets_per_wall_s": round(sim.packets_sent / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if converged_at is None and selected:
        # Join floods cost O(nodes x links) deliveries; extrapolate from the measured rate.
        expected_packets = sim.packets_sent / result["progress"]
        result["extrapolated_wall_s"] = round(expected_packets / result["packets_per_wall_s"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--degree", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget", type=float, default=300.0, help="wall seconds per size")
    parser.add_argument("--out", type=Path, default=Path("bench/results/routing_scale.json"))
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        result = measure(n, args.degree, args.seed, args.budget)
        print(json.dumps(result), flush=True)
        results.append(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
