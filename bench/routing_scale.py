"""Routing at scale: random topologies (mean degree 4) on the simulator, all nodes joining at once.

For each size, in a fresh process: wall time until every node has a selected route to every
other node's /64, peak RSS, router state per route (deep size of a sample of routers, each counted
as a real node would hold it), control traffic per node (during the join flood and in a quiet
300 s afterwards). A size that does not converge within ``--budget`` wall seconds or
``--max-rss-gb`` reports how far it got. Sizes that converged are fitted (wall ~ c * N^a) to
extrapolate the others. Sizes up to 500 nodes run ``--runs`` times (median wall time).

    python bench/routing_scale.py --sizes 250 500 1000 2000 10000 --budget 600 --max-rss-gb 8
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from mycelium.routing import Router
from mycelium.sim import Simulation, parse_spec
from mycelium.sim.checks import converged
from runner import argument_parser, median, report

QUIET_S = 300.0  # one own-announcement period: Hellos, IHUs and one Update per neighbour


def _size(obj: object) -> int:
    return sys.getsizeof(obj)


def router_state_bytes(router: Router) -> int:
    """Bytes reachable from ``router``, each object counted once: what one node holds.

    In the simulator, neighbours that received the same frame share the decoded subnet and router
    ID objects; walking each router on its own counts them per router, as separate processes
    would. Classes, functions and modules are skipped (shared code, not state)."""
    seen: set[int] = set()
    total = 0
    todo: list[object] = [router]
    skip = (type, type(sys), type(_size), type(len))
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if type(obj) is int and -5 <= obj <= 256:  # type: ignore[operator]
            continue  # cached small ints are shared by the interpreter
        total += _size(obj)
        todo.extend(gc.get_referents(obj))
    return total


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def measure(n: int, degree: float, seed: int, budget: float, max_rss_gb: float) -> dict[str, Any]:
    topology = parse_spec(f"random:{n}:{degree}", random.Random(seed))
    sim = Simulation(topology, seed)
    gc.collect()
    gc.disable()  # millions of long-lived route entries: full collections would dominate
    started = time.perf_counter()
    cpu_started = time.process_time()
    sim.start()
    needed = n * (n - 1)
    converged_at = None
    stopped = "virtual time limit"
    step = 0.002  # the join flood is over in ~0.3 virtual s; small steps keep the guards close
    while sim.now < 60:
        if time.perf_counter() - started > budget:
            stopped = "wall budget"
            break
        if rss_gb() > max_rss_gb:
            stopped = "memory cap"
            break
        sim.run_until(sim.now + step)
        if converged(sim):
            converged_at = sim.now
            break
        if sim.now > 0.5:
            step = min(step * 1.5, 1.0)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # less sensitive than wall to a shared machine
    flood_bytes, flood_packets = sim.bytes_sent, sim.packets_sent
    selected = sum(1 for r in sim.routers for s in r.table.slots() if r.table.sel[s])
    entries = sum(r.table.entry_count() for r in sim.routers)
    sample = random.Random(seed).sample(range(n), min(n, 10))
    state = sum(router_state_bytes(sim.routers[i]) for i in sample)
    sample_routes = sum(len(sim.routers[i].table) for i in sample)
    sample_entries = sum(sim.routers[i].table.entry_count() for i in sample)
    result: dict[str, Any] = {
        "nodes": n,
        "links": len(topology.links),
        "converged": converged_at is not None,
        "virtual_convergence_s": None if converged_at is None else round(converged_at, 3),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "selected_routes": selected,
        "routes_needed": needed,
        "progress": round(selected / needed, 4),
        "route_entries": entries,
        "state_bytes_per_route": round(state / max(sample_routes, 1), 1),
        "state_bytes_per_route_entry": round(state / max(sample_entries, 1), 1),
        "flood_control_packets": flood_packets,
        "flood_control_bytes_per_node": round(flood_bytes / n),
        "packets_per_wall_s": round(flood_packets / wall),
        "packets_in_flight": sim.packets_in_flight(),
    }
    if converged_at is None:
        result["stopped_by"] = stopped
    if converged_at is not None:
        sim.run_until(sim.now + QUIET_S)
        quiet = sim.bytes_sent - flood_bytes
        result["quiet_control_bytes_per_node_s"] = round(quiet / n / QUIET_S, 2)
    gc.enable()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Least squares of log y = log c + a log N; None without two distinct sizes."""
    if len({n for n, _ in points}) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return math.exp(my - a * mx), a


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in results if r["converged"]]
    summary: dict[str, Any] = {}
    for key in ("wall_s", "cpu_s"):
        fit = _fit([(r["nodes"], r[key]) for r in done if key in r])
        if fit is not None:
            c, a = fit
            summary[f"{key}_fit"] = f"{key} ~ {c:.3g} * N^{a:.2f}"
            summary[f"extrapolated_{key}"] = {n: round(c * n**a) for n in (1000, 2000, 5000, 10000)}
    if done:
        per_route = max(r["state_bytes_per_route"] for r in done)
        summary["extrapolated_router_state_gb"] = {
            n: round(per_route * n * (n - 1) / 1e9, 1) for n in (1000, 2000, 5000, 10000)
        }
    return summary


def main() -> None:
    parser = argument_parser(__doc__, "routing_scale")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 10000])
    parser.add_argument("--degree", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per size up to 500 nodes (median); 1 above"
    )
    parser.add_argument("--budget", type=float, default=300.0, help="wall seconds per run")
    parser.add_argument("--max-rss-gb", type=float, default=6.0, help="stop a run above this")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:  # child: one run, one JSON line
        result = measure(args.one, args.degree, args.seed, args.budget, args.max_rss_gb)
        print(json.dumps(result), flush=True)
        return
    results = []
    for n in args.sizes:
        runs = []
        for run in range(args.runs if n <= 500 else 1):
            cmd = [sys.executable, __file__, "--one", str(n), "--degree", str(args.degree)]
            cmd += ["--seed", str(args.seed + run), "--budget", str(args.budget)]
            cmd += ["--max-rss-gb", str(args.max_rss_gb)]
            child = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if child.returncode != 0:
                runs.append({"nodes": n, "converged": False, "error": child.stderr[-400:]})
                continue
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        ok = [r for r in runs if "error" not in r]
        result = runs[0] if not ok else dict(ok[0])
        if len(ok) > 1:
            result["wall_s"] = median(r["wall_s"] for r in ok)
            result["wall_s_runs"] = [r["wall_s"] for r in ok]
        print(json.dumps(result), flush=True)
        results.append(result)
    summary = summarise(results)
    print(json.dumps(summary, indent=2))
    report({"results": results, "summary": summary}, args.out)


if __name__ == "__main__":
    main()
