"""Network-wide invariants over a simulation: convergence, forwarding loops, path stretch.

Each router only knows its own table; these checks follow selected routes hop by hop across all
of them, which is what a packet would do.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable

from ..wire.tlv import INFINITY
from .network import Simulation


def next_hop(sim: Simulation, at: int, dst: int) -> int | None:
    entry = sim.routers[at].selected_entry(sim.routers[dst].subnet)
    if entry is None or entry.metric == INFINITY:
        return None
    return entry.neighbour.id  # type: ignore[no-any-return]


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
        lists = router.table.lists
        for j, subnet in enumerate(subnets):
            if i == j:
                continue
            rl = lists.get(subnet)
            sre = rl.selected() if rl is not None else None
            has = sre is not None and sre.metric != INFINITY
            if has != (comp[i] == comp[j]):
                wrong += 1
    return wrong


def path(sim: Simulation, src: int, dst: int) -> tuple[list[int] | None, bool]:
    """(hops, looped): the forwarding path along selected routes; hops None on a dead end."""
    hops = [src]
    seen = {src}
    while hops[-1] != dst:
        nxt = next_hop(sim, hops[-1], dst)
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


def count_loops(sim: Simulation, pairs: Iterable[tuple[int, int]]) -> int:
    return sum(1 for src, dst in pairs if path(sim, src, dst)[1])


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
