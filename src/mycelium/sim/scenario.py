"""A simulation run from start to report: what ``mycelium sim`` prints."""

from __future__ import annotations

import gc
import random
import resource
import time
from dataclasses import dataclass
from typing import Any

from ..routing.constants import FAST_HELLO, HelloTimers
from .checks import (
    converged,
    count_loops,
    missing_routes,
    path_quality,
    stretch,
    unrouted_pairs,
)
from .network import Simulation
from .topology import Topology, TopologyError

#: Resolution of ``convergence_s``.
CONVERGENCE_STEP = 0.01


@dataclass(frozen=True, slots=True)
class Cut:
    a: str
    b: str
    at: float

    @classmethod
    def parse(cls, text: str) -> Cut:
        """``A-B@T``: take the link between nodes A and B down at virtual second T."""
        pair, sep, when = text.partition("@")
        a, dash, b = pair.partition("-")
        try:
            at = float(when)
        except ValueError:
            at = -1.0
        if not (sep and dash and a and b) or at < 0:
            raise TopologyError(f"bad cut {text!r}: expected A-B@SECONDS")
        return cls(a, b, at)


def _sample_pairs(n: int, limit: int, rng: random.Random) -> list[tuple[int, int]]:
    if n * (n - 1) <= limit:
        return [(a, b) for a in range(n) for b in range(n) if a != b]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < limit:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b:
            pairs.add((a, b))
    return sorted(pairs)


def run(
    topology: Topology,
    seed: int = 0,
    duration: float = 60.0,
    cuts: list[Cut] | None = None,
    sample_pairs: int = 2000,
    traffic: bool = True,
    silent: bool = False,
    hello: HelloTimers = FAST_HELLO,
) -> dict[str, Any]:
    """Run ``topology`` for ``duration`` virtual seconds. With ``traffic``, every checked pair
    exchanges one packet per second, as a monitoring ping would. ``silent``: cut links stop
    carrying packets without either end being told (only the dead-neighbour check finds it);
    otherwise both ends see the connection close. ``hello``: the routers' Hello timers."""
    cuts = cuts or []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # long-lived route entries by the million: full collections would dominate
    try:
        return _run(topology, seed, duration, cuts, sample_pairs, traffic, silent, hello)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run(
    topology: Topology,
    seed: int,
    duration: float,
    cuts: list[Cut],
    sample_pairs: int,
    traffic: bool,
    silent: bool,
    hello: HelloTimers,
) -> dict[str, Any]:
    started = time.perf_counter()
    sim = Simulation(topology, seed, hello)
    for cut in cuts:
        a, b = sim.index.get(cut.a, -1), sim.index.get(cut.b, -1)
        if (a, b) not in sim.links:
            raise TopologyError(f"cut {cut.a}-{cut.b}: no such link")
        if silent:
            sim.at(cut.at, lambda s, a=a, b=b: s.silence(a, b))
        else:
            sim.at(cut.at, lambda s, a=a, b=b: s.link_down(a, b))
    sim.start()
    n = len(sim.routers)
    checker = random.Random(seed + 1)
    pairs = _sample_pairs(n, sample_pairs, checker)
    interval = 0.1 if n <= 200 else 0.5 if n <= 2000 else 2.0
    first_cut = min((c.at for c in cuts), default=None)
    converged_at: float | None = None
    reconverged_after: float | None = None
    #: The last traffic round after the first cut in which a probe was lost.
    last_loss: float | None = None
    loops = forwarding_loops = 0
    samples = 0
    delivered = sent = 0
    next_traffic = 1.0
    t = 0.0
    while t < duration:
        end = min(t + interval, duration)
        # Until the first convergence, look every 10 ms (the join flood takes a few hundred).
        while (
            converged_at is None
            and t + CONVERGENCE_STEP < end
            and (first_cut is None or t + CONVERGENCE_STEP < first_cut)
        ):
            t += CONVERGENCE_STEP
            sim.run_until(t)
            if converged(sim):
                converged_at = t
        t = end
        sim.run_until(t)
        if traffic and t >= next_traffic:
            # Traffic keeps used routes alive and finds lost ones (the reference is reactive).
            next_traffic += 1.0
            lost = 0
            for src, dst in pairs:
                sent += 1
                ok = sim.probe(src, dst)
                delivered += ok
                lost += not ok
            if lost and first_cut is not None and t >= first_cut:
                last_loss = t
        samples += 1
        loops += count_loops(sim, pairs)
        forwarding_loops += count_loops(sim, pairs, retracted=True)
        if first_cut is None or t < first_cut:
            if converged_at is None and converged(sim):
                converged_at = t
        elif not traffic and reconverged_after is None and unrouted_pairs(sim, pairs) == 0:
            reconverged_after = t - first_cut
    missing_at_end = missing_routes(sim)
    dsts = sorted(checker.sample(range(n), min(n, 20)))
    quality = path_quality(sim, dsts)
    wall = time.perf_counter() - started
    total_routes = sum(len(r.routes()) for r in sim.routers)
    report: dict[str, Any] = {
        "nodes": n,
        "links": len(topology.links),
        "seed": seed,
        "duration_s": duration,
        "hello_interval_s": hello.interval,
        "dead_after_s": hello.dead_after,
        "converged": converged_at is not None,
        "convergence_s": None if converged_at is None else round(converged_at, 3),
        "missing_routes_at_end": missing_at_end,
        "loops": loops,  # finite selected routes forming a cycle (Babel's guarantee)
        "forwarding_loops": forwarding_loops,  # the same, following held retractions too
        "loop_samples": samples,
        "pairs_checked_per_sample": len(pairs),
        "unrouted_pairs_at_end": unrouted_pairs(sim, pairs),
        "probes_sent": sent,
        "probes_delivered": delivered,
        "stretch_max": round(stretch(sim, dsts), 4),
        # Against the reference's optimum under settled link costs (checks.PathQuality).
        "paths_optimal_share": round(quality.optimal / max(quality.pairs, 1), 4),
        "path_cost_gap_max": quality.gap_max,
        "path_extra_hops_max": quality.extra_hops_max,
        "routes_total": total_routes,
        "control_packets": sim.packets_sent,
        "control_bytes_per_node_s": round(sim.bytes_sent / n / duration, 2),
        "wall_s": round(wall, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if cuts:
        report["cuts"] = [f"{c.a}-{c.b}@{c.at:g}" for c in cuts]
        report["cuts_silent"] = silent
        # With traffic: until every pair's probe arrives again, as `ping` between all pairs
        # would see it (a silent cut leaves stale routes selected: only delivery tells).
        if traffic and first_cut is not None and (last_loss is None or last_loss + 1 < duration):
            reconverged_after = 0.0 if last_loss is None else last_loss + 1.0 - first_cut
        report["reconverged_after_cut_s"] = (
            None if reconverged_after is None else round(reconverged_after, 3)
        )
    return report
