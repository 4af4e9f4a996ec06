"""A ring split in two, with traffic still trying to cross: no loops, no count-to-infinity.

Routes to the unreachable half must disappear (retracted at once when the connection close is
seen, after the dead-neighbour check when the link just goes silent), never come back while the
partition lasts, and never grow their metric on the way out. Healing the cuts brings them back.
"""

from __future__ import annotations

import itertools
import random

import pytest

from mycelium.routing.constants import FAST_HELLO
from mycelium.sim import Simulation, parse_spec
from mycelium.sim.checks import count_loops, unrouted_pairs
from mycelium.wire.tlv import INFINITY

N = 8
PAIRS = list(itertools.permutations(range(N), 2))
#: Cutting 0-1 and 4-5 leaves {1, 2, 3, 4} and {5, 6, 7, 0}.
HALF = [0, 1, 1, 1, 1, 0, 0, 0]


def _stale_routes(sim: Simulation) -> tuple[int, int]:
    """(selected finite routes to the other half, their highest metric)."""
    count = highest = 0
    for i in range(N):
        for j in range(N):
            if HALF[i] != HALF[j]:
                e = sim.routers[i].selected_entry(sim.routers[j].subnet)
                if e is not None and e.metric != INFINITY:
                    count += 1
                    highest = max(highest, e.metric)
    return count, highest


def _highest_metric(sim: Simulation) -> int:
    return max(v.metric for r in sim.routers for v in r.routes() if v.metric != INFINITY)


@pytest.mark.parametrize("silent", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_partition_retracts_routes_without_loops_or_counting_up(silent: bool, seed: int) -> None:
    sim = Simulation(parse_spec(f"ring:{N}", random.Random(seed)), seed)
    sim.start()
    sim.run_until(30.0)
    before = _highest_metric(sim)
    cut_at = 31.0
    sim.run_until(cut_at)
    for a, b in ((0, 1), (4, 5)):
        if silent:
            sim.silence(a, b)
        else:
            sim.link_down(a, b)
    bound = 1.0 if not silent else FAST_HELLO.dead_after + 2 * FAST_HELLO.check_every
    gone_at = None
    t = cut_at
    while t < cut_at + 120.0:
        t += 0.25
        sim.run_until(t)
        for src, dst in PAIRS:  # traffic keeps asking for the other half
            sim.probe(src, dst)
        assert count_loops(sim, PAIRS, retracted=True) == 0, t
        stale, highest = _stale_routes(sim)
        assert highest <= before, "a metric grew towards infinity"
        if stale == 0 and gone_at is None:
            gone_at = t - cut_at
        assert not (stale and gone_at is not None), "a route to the other half came back"
    assert gone_at is not None and gone_at <= bound
    within = [(a, b) for a, b in PAIRS if HALF[a] == HALF[b]]
    assert unrouted_pairs(sim, within) == 0

    # Heal: both halves find each other again (reactively, through the traffic).
    for a, b in ((0, 1), (4, 5)):
        sim.link_down(a, b)
        sim.link_up(a, b)
    end = sim.now + 10.0
    while sim.now < end:
        sim.run_until(sim.now + 0.25)
        for src, dst in PAIRS:
            sim.probe(src, dst)
        assert count_loops(sim, PAIRS, retracted=True) == 0
    assert unrouted_pairs(sim, PAIRS) == 0
