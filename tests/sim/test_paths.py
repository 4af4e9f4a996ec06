"""Which paths the simulated routers settle on, against what the reference's rules predict.

A fresh network floods every announcement while every link still costs 1000 + 10 (docs/routing.md
§3.3), so its first paths have the fewest hops. Link costs then settle to RTT + static cost, and
traffic refreshes routes near expiry with route requests, which carry the settled costs: paths
become the cheapest ones within the selection hysteresis (10 per hop), except that a neighbour of
the destination always keeps the direct link (metric 0 wins selection).
"""

from __future__ import annotations

import itertools
import random

import pytest

from mycelium.routing.constants import SIGNIFICANT_METRIC_IMPROVEMENT
from mycelium.sim import Simulation, Topology, parse_spec
from mycelium.sim.checks import (
    count_loops,
    missing_routes,
    path,
    path_quality,
    settled_link_cost,
    shortest_costs,
)
from mycelium.sim.topology import Link

TOPOLOGIES = ["line:6", "ring:8", "grid:4x3", "random:16:3"]


def _run_with_traffic(sim: Simulation, until: float, every: float = 10.0) -> int:
    """Every pair sends a packet every ``every`` s (the route-refresh window is 15 s); returns
    the loops seen at those samples."""
    n = len(sim.routers)
    pairs = list(itertools.permutations(range(n), 2))
    loops = 0
    t = sim.now
    while t < until:
        t += every
        sim.run_until(t)
        for src, dst in pairs:
            sim.probe(src, dst)
        loops += count_loops(sim, pairs)
    return loops


@pytest.mark.parametrize("spec", TOPOLOGIES)
@pytest.mark.parametrize("seed", [1, 2])
def test_fresh_network_takes_fewest_hops(spec: str, seed: int) -> None:
    sim = Simulation(parse_spec(spec, random.Random(seed)), seed)
    sim.start()
    sim.run_until(10.0)  # before the first Hello: every link still costs 1010
    n = len(sim.routers)
    assert missing_routes(sim) == 0
    quality = path_quality(sim, range(n))
    assert quality.pairs == n * (n - 1)
    assert quality.extra_hops_max == 0


@pytest.mark.parametrize("spec", TOPOLOGIES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_settled_network_takes_cheapest_paths_within_hysteresis(spec: str, seed: int) -> None:
    sim = Simulation(parse_spec(spec, random.Random(seed)), seed)
    sim.start()
    # Costs settle after ~66 Hellos (1320 s); one more refresh cycle (1050 s) spreads them.
    loops = _run_with_traffic(sim, 3000.0)
    n = len(sim.routers)
    assert loops == 0
    assert missing_routes(sim) == 0
    quality = path_quality(sim, range(n))
    assert quality.pairs == n * (n - 1)
    # Every router's metric is exactly the settled cost of the path its packets take.
    assert quality.wrong_belief == 0
    assert quality.gap_max_per_hop <= SIGNIFICANT_METRIC_IMPROVEMENT
    assert quality.optimal >= 0.85 * quality.pairs, quality


def test_neighbour_of_destination_keeps_a_slow_direct_link() -> None:
    # Triangle: 0-2 direct is slow (40 ms), 0-1-2 is fast (2 x 1 ms).
    links = [Link("0", "1", 0.001), Link("1", "2", 0.001), Link("0", "2", 0.040)]
    sim = Simulation(Topology(["0", "1", "2"], links).check(), seed=1)
    sim.start()
    _run_with_traffic(sim, 3000.0)
    assert settled_link_cost(0.040) > 2 * settled_link_cost(0.001) + SIGNIFICANT_METRIC_IMPROVEMENT
    # The owner's metric-0 announcement wins selection, so 0 never moves to the cheaper path.
    assert path(sim, 0, 2)[0] == [0, 2]
    assert shortest_costs(sim, 2, direct_wins=True)[0] == settled_link_cost(0.040)
    assert shortest_costs(sim, 2)[0] == 2 * settled_link_cost(0.001)


def test_slow_shortcut_is_abandoned_once_costs_settle() -> None:
    # 0 reaches 3 (behind 2) over a slow one-hop shortcut 0-2 or a fast two-hop path 0-1-2.
    links = [
        Link("0", "1", 0.001),
        Link("1", "2", 0.001),
        Link("0", "2", 0.045),
        Link("2", "3", 0.001),
    ]
    sim = Simulation(Topology(["0", "1", "2", "3"], links).check(), seed=1)
    sim.start()
    sim.run_until(10.0)
    assert path(sim, 0, 3)[0] == [0, 2, 3]  # fewest hops while every link costs 1010
    loops = _run_with_traffic(sim, 3000.0)
    assert loops == 0
    assert path(sim, 0, 3)[0] == [0, 1, 2, 3]
