"""Network-wide invariants over a simulation: convergence, forwarding loops, path stretch.

Each router only knows its own table; these checks follow selected routes hop by hop across all
of them, which is what a packet would do.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..routing.constants import SIGNIFICANT_METRIC_IMPROVEMENT
from ..wire.tlv import INFINITY
from .network import LINK_STATIC_COST, Simulation


def next_hop(sim: Simulation, at: int, dst: int, retracted: bool = False) -> int | None:
    """The neighbour ``at`` forwards to. ``retracted``: also follow a selected entry whose
    metric is infinite, as the data plane does (the reference forwards over the selected entry
    whatever its metric, for the 6 s a retracted entry is held)."""
    hop = sim.routers[at].selected_hop(sim.routers[dst].subnet)
    if hop is None or (hop[1] == INFINITY and not retracted):
        return None
    return hop[0]


def components(sim: Simulation) -> list[int]:
    """Component number of every node over the links that are up."""
    comp = [-1] * len(sim.routers)
    for start in range(len(comp)):
        if comp[start] >= 0:
            continue
        comp[start] = start
        todo = [start]
        while todo:
            x = todo.pop()
            for y in sim.neighbours[x]:
                if comp[y] < 0 and sim.links[(x, y)].up:
                    comp[y] = start
                    todo.append(y)
    return comp


def missing_routes(sim: Simulation, comp: list[int] | None = None) -> int:
    """Routes a converged network would have but this one lacks, plus routes to nodes it cannot
    reach any more (which would black-hole traffic)."""
    comp = components(sim) if comp is None else comp
    subnets = [r.subnet for r in sim.routers]
    wrong = 0
    for i, router in enumerate(sim.routers):
        selected_hop = router.selected_hop
        for j, subnet in enumerate(subnets):
            if i == j:
                continue
            hop = selected_hop(subnet)
            has = hop is not None and hop[1] != INFINITY
            if has != (comp[i] == comp[j]):
                wrong += 1
    return wrong


def converged(sim: Simulation) -> bool:
    """Every node routes to exactly the nodes it can reach (``missing_routes`` is 0).

    A cheap count first: in a connected network, fewer subnets in the tables than pairs means
    not yet, without the O(N^2) walk."""
    comp = components(sim)
    sizes: dict[int, int] = {}
    for c in comp:
        sizes[c] = sizes.get(c, 0) + 1
    if len(sizes) == 1:
        n = len(comp)
        if sum(len(r.table) for r in sim.routers) < n * (n - 1):
            return False
    return missing_routes(sim, comp) == 0


def path(
    sim: Simulation, src: int, dst: int, retracted: bool = False
) -> tuple[list[int] | None, bool]:
    """(hops, looped): the forwarding path along selected routes; hops None on a dead end."""
    hops = [src]
    seen = {src}
    while hops[-1] != dst:
        nxt = next_hop(sim, hops[-1], dst, retracted)
        if nxt is None:
            return None, False
        if nxt in seen:
            return [*hops, nxt], True
        seen.add(nxt)
        hops.append(nxt)
    return hops, False


def unrouted_pairs(sim: Simulation, pairs: Iterable[tuple[int, int]]) -> int:
    """Pairs in the same component whose packets would not arrive (dead end or loop)."""
    comp = components(sim)
    missing = 0
    for src, dst in pairs:
        if comp[src] == comp[dst]:
            hops, looped = path(sim, src, dst)
            missing += hops is None or looped
    return missing


def count_loops(sim: Simulation, pairs: Iterable[tuple[int, int]], retracted: bool = False) -> int:
    """Pairs whose packets would cycle. ``retracted=False`` checks Babel's guarantee (finite
    routes never form a loop); ``True`` what the data plane does, held retractions included."""
    return sum(1 for src, dst in pairs if path(sim, src, dst, retracted)[1])


def shortest_latencies(sim: Simulation, dst: int) -> list[float]:
    """Dijkstra from ``dst`` over links that are up, weighted by one-way latency."""
    dist = [math.inf] * len(sim.routers)
    dist[dst] = 0.0
    heap = [(0.0, dst)]
    while heap:
        d, x = heapq.heappop(heap)
        if d > dist[x]:
            continue
        for y in sim.neighbours[x]:
            state = sim.links[(x, y)]
            if state.up and d + state.latency < dist[y]:
                dist[y] = d + state.latency
                heapq.heappush(heap, (dist[y], y))
    return dist


def stretch(sim: Simulation, dsts: Iterable[int]) -> float:
    """Worst ratio of the chosen path's latency to the shortest path's, over routed pairs."""
    worst = 1.0
    for dst in dsts:
        best = shortest_latencies(sim, dst)
        for src in range(len(sim.routers)):
            if src == dst or math.isinf(best[src]) or best[src] == 0:
                continue
            hops, looped = path(sim, src, dst)
            if hops is None or looped:
                continue
            chosen = sum(sim.links[(a, b)].latency for a, b in itertools.pairwise(hops))
            worst = max(worst, chosen / best[src])
    return worst


def settled_link_cost(latency: float) -> int:
    """The cost a link of this one-way latency settles at: the smoothed RTT in whole ms (the
    integer smoothing converges to the sample exactly) plus the static cost
    (docs/routing.md §3.3)."""
    return round(latency * 2_000_000) // 1000 + LINK_STATIC_COST


def _cost(sim: Simulation, a: int, b: int) -> int:
    return settled_link_cost(sim.links[(a, b)].latency)


def shortest_costs(sim: Simulation, dst: int, direct_wins: bool = False) -> list[float]:
    """Dijkstra from ``dst`` over links that are up, weighted by settled link cost.

    ``direct_wins``: the reference's optimum. A neighbour of ``dst`` keeps the direct link
    whatever it costs: the owner's metric-0 announcement always wins selection and is refreshed
    every 300 s, so that node never queries for better paths (docs/routing.md §4.6).
    """
    dist = [math.inf] * len(sim.routers)
    dist[dst] = 0
    fixed: set[int] = set()
    if direct_wins:
        for y in sim.neighbours[dst]:
            if sim.links[(dst, y)].up:
                dist[y] = _cost(sim, dst, y)
                fixed.add(y)
    heap: list[tuple[float, int]] = [(0, dst)] if not fixed else [(dist[y], y) for y in fixed]
    heapq.heapify(heap)
    while heap:
        d, x = heapq.heappop(heap)
        if d > dist[x]:
            continue
        for y in sim.neighbours[x]:
            if y != dst and y not in fixed and sim.links[(x, y)].up:
                nd = d + _cost(sim, x, y)
                if nd < dist[y]:
                    dist[y] = nd
                    heapq.heappush(heap, (nd, y))
    return dist


def hop_counts(sim: Simulation, dst: int) -> list[float]:
    """Breadth-first hop distance from ``dst`` over links that are up."""
    dist = [math.inf] * len(sim.routers)
    dist[dst] = 0
    frontier = [dst]
    while frontier:
        nxt = []
        for x in frontier:
            for y in sim.neighbours[x]:
                if math.isinf(dist[y]) and sim.links[(x, y)].up:
                    dist[y] = dist[x] + 1
                    nxt.append(y)
        frontier = nxt
    return dist


@dataclass(frozen=True, slots=True)
class PathQuality:
    """How selected paths compare with the best ones under the router's own metric.

    The optimum is the reference's (``shortest_costs(direct_wins=True)``). The reference
    switches routes only for an improvement of more than ``SIGNIFICANT_METRIC_IMPROVEMENT`` (10),
    so each hop may keep a path up to 10 worse than the best it knows: ``gap_max_per_hop`` <= 10
    is "shortest within the hysteresis".
    """

    pairs: int
    optimal: int  # pairs on a path of exactly the minimum cost
    gap_max: int  # worst (chosen path cost - minimum cost)
    gap_max_per_hop: float  # worst gap divided by the chosen path's hop count
    wrong_belief: int  # pairs whose selected metric differs from the path's settled cost
    extra_hops_max: int  # worst (chosen hops - minimum hops)

    @property
    def within_hysteresis(self) -> bool:
        return self.gap_max_per_hop <= SIGNIFICANT_METRIC_IMPROVEMENT


def path_quality(sim: Simulation, dsts: Iterable[int]) -> PathQuality:
    """Compare every routed (src, dst) path with the cheapest and the shortest one."""
    pairs = optimal = gap_max = wrong = extra_max = 0
    per_hop = 0.0
    for dst in dsts:
        best = shortest_costs(sim, dst, direct_wins=True)
        hops_best = hop_counts(sim, dst)
        subnet = sim.routers[dst].subnet
        for src in range(len(sim.routers)):
            if src == dst or math.isinf(best[src]):
                continue
            hops, looped = path(sim, src, dst)
            if hops is None or looped:
                continue
            pairs += 1
            cost = sum(_cost(sim, a, b) for a, b in itertools.pairwise(hops))
            gap = int(cost - best[src])
            optimal += gap == 0
            gap_max = max(gap_max, gap)
            per_hop = max(per_hop, gap / (len(hops) - 1))
            extra_max = max(extra_max, len(hops) - 1 - int(hops_best[src]))
            entry = sim.routers[src].selected_entry(subnet)
            if entry is not None and entry.metric + entry.neighbour.link_cost != cost:
                wrong += 1
    return PathQuality(pairs, optimal, gap_max, per_hop, wrong, extra_max)
