"""Topology specs: shapes, link counts, connectivity and reproducibility from the seed."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.sim import Simulation, TopologyError, parse_spec
from mycelium.sim.checks import components


@pytest.mark.parametrize(
    ("spec", "nodes", "links"),
    [
        ("line:5", 5, 4),
        ("ring:5", 5, 5),
        ("ring:2", 2, 1),
        ("grid:4x3", 12, 17),
        ("grid:1x2", 2, 1),
    ],
)
def test_generated_shapes(spec: str, nodes: int, links: int) -> None:
    topology = parse_spec(spec, random.Random(0))
    assert len(topology.nodes) == nodes
    assert len(topology.links) == links
    assert all(0.001 <= link.latency <= 0.050 for link in topology.links)


@given(st.integers(2, 60), st.floats(1.0, 8.0), st.integers(0, 2**32))
def test_random_topologies_are_connected_with_the_mean_degree(
    n: int, degree: float, seed: int
) -> None:
    topology = parse_spec(f"random:{n}:{degree}", random.Random(seed))
    assert len(topology.links) == max(n - 1, min(int(n * degree / 2), n * (n - 1) // 2))
    sim = Simulation(topology, seed)
    sim.start()
    assert len(set(components(sim))) == 1


def test_same_seed_same_network() -> None:
    a = parse_spec("random:40:4", random.Random(7))
    b = parse_spec("random:40:4", random.Random(7))
    c = parse_spec("random:40:4", random.Random(8))
    assert a == b and a != c
    sa, sb = Simulation(a, 7), Simulation(b, 7)
    assert [r.router_id for r in sa.routers] == [r.router_id for r in sb.routers]


@pytest.mark.parametrize(
    "spec", ["line:1", "ring:x", "grid:3", "grid:0x4", "random:1:4", "random:5:0", "mesh:4", ""]
)
def test_bad_specs_are_typed_errors(spec: str) -> None:
    with pytest.raises(TopologyError):
        parse_spec(spec, random.Random(0))
