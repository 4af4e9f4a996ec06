"""The simulator end to end: convergence on every topology kind, rerouting around a cut, no loops
in a partition, and churn (flapping links, restarting nodes) never looping."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mycelium.cli.main import cli
from mycelium.routing.constants import FAST_HELLO, REFERENCE_HELLO, HelloTimers
from mycelium.sim import Cut, Simulation, Topology, TopologyError, load_file, parse_spec, run
from mycelium.sim.checks import components, count_loops, missing_routes, path, unrouted_pairs
from mycelium.sim.topology import Link


@pytest.mark.parametrize("spec", ["line:6", "ring:8", "grid:4x3", "random:30:3"])
def test_every_topology_converges_without_loops(spec: str) -> None:
    report = run(parse_spec(spec, random.Random(3)), seed=3, duration=10.0)
    assert report["converged"], report
    assert report["loops"] == 0
    assert report["missing_routes_at_end"] == 0
    assert report["unrouted_pairs_at_end"] == 0
    assert report["convergence_s"] < 2.0


def test_fresh_network_follows_hop_count_until_link_costs_settle() -> None:
    # Every new link costs 1000 + 10 (docs/routing.md §3.3), so a line-shaped path is chosen over a
    # single slow link only once RTT samples have pulled the costs down; in a line there is
    # exactly one path, so the stretch is 1.
    report = run(parse_spec("line:5", random.Random(1)), seed=1, duration=5.0)
    assert report["stretch_max"] == 1.0


def test_cut_in_a_ring_reroutes_the_other_way() -> None:
    topology = parse_spec("ring:10", random.Random(1))
    report = run(topology, seed=1, duration=40.0, cuts=[Cut.parse("2-3@20")])
    assert report["loops"] == 0
    assert report["reconverged_after_cut_s"] is not None
    assert report["reconverged_after_cut_s"] < 10.0
    assert report["unrouted_pairs_at_end"] == 0


def test_cut_side_routes_are_retracted_and_a_partition_never_loops() -> None:
    topology = parse_spec("line:6", random.Random(2))
    sim = Simulation(topology, seed=2)
    sim.start()
    sim.run_until(5.0)
    assert missing_routes(sim) == 0
    sim.link_down(2, 3)
    pairs = list(itertools.permutations(range(6), 2))
    for step in range(1, 200):
        sim.run_until(5.0 + step * 0.1)
        assert count_loops(sim, pairs) == 0
    comp = components(sim)
    assert comp[0] != comp[5]
    # No node keeps a selected route to the other side (it would black-hole traffic).
    assert missing_routes(sim, comp) == 0
    assert unrouted_pairs(sim, pairs) == 0


def test_restored_link_returns_traffic_to_the_short_way() -> None:
    # A ring of 4 where 0-1 is the only fast link between 0 and 1.
    links = [
        Link("0", "1", 0.001),
        Link("1", "2", 0.001),
        Link("2", "3", 0.001),
        Link("3", "0", 0.001),
    ]
    sim = Simulation(Topology(["0", "1", "2", "3"], links).check(), seed=1)
    sim.start()
    sim.run_until(10.0)  # past the owner's 4 s guard against early seqno bumps
    assert path(sim, 0, 1)[0] == [0, 1]
    sim.link_down(0, 1)
    for t in range(11, 20):
        sim.probe(0, 1)
        sim.run_until(float(t))
    assert path(sim, 0, 1)[0] == [0, 3, 2, 1]
    sim.link_up(0, 1)
    sim.run_until(22.0)
    # The direct neighbour's announcement has metric 0: it wins at once (docs/routing.md §4.6).
    assert path(sim, 0, 1)[0] == [0, 1]


PAIRS = list(itertools.combinations(range(6), 2))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sets(st.sampled_from(PAIRS), min_size=5, max_size=12),
    st.lists(
        st.tuples(
            st.sampled_from(["flap", "restart", "silence"]),
            st.sampled_from(PAIRS),
            st.floats(0.05, 20.0),
        ),
        max_size=10,
    ),
    st.integers(0, 1000),
    st.sampled_from([FAST_HELLO, REFERENCE_HELLO]),
)
def test_churn_never_loops_and_recovers(
    pairs: set, script: list, seed: int, hello: HelloTimers
) -> None:
    nodes = [str(i) for i in range(6)]
    rng = random.Random(seed)
    links = [
        Link(str(a), str(b), rng.uniform(0.001, 0.03), rng.uniform(0, 0.005))
        for a, b in sorted(pairs)
    ]
    sim = Simulation(Topology(nodes, links).check(), seed, hello)
    sim.start()
    all_pairs = list(itertools.permutations(range(6), 2))
    sim.run_until(1.0)

    def run_for(seconds: float) -> None:
        end = sim.now + seconds
        while sim.now < end:
            for src, dst in all_pairs[:: 1 + seed % 5]:
                sim.probe(src, dst)
            sim.run_until(min(end, sim.now + 0.5))
            assert count_loops(sim, all_pairs) == 0
            assert count_loops(sim, all_pairs, retracted=True) == 0  # what packets do

    for kind, (a, b), dt in script:
        if kind == "restart":  # same key, new router ID, seqno 0
            sim.restart(a)
        elif (a, b) in sim.links:
            if kind == "silence":
                sim.silence(a, b)
            elif sim.links[(a, b)].up:
                sim.link_down(a, b)
            else:
                sim.link_up(a, b)
        run_for(dt)
    # Churn over: every link reconnects; traffic finds every destination again.
    for a, b in sim.link_pairs():
        sim.link_down(a, b)
        sim.link_up(a, b)
    for _ in range(60):
        run_for(0.5)
        for src, dst in all_pairs:
            sim.probe(src, dst)
    assert unrouted_pairs(sim, all_pairs) == 0


def test_cli_json_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "sim",
            "--topology",
            "ring:6",
            "--seed",
            "1",
            "--duration",
            "30",
            "--cut",
            "0-1@10",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in (
        "nodes",
        "links",
        "converged",
        "convergence_s",
        "reconverged_after_cut_s",
        "loops",
        "stretch_max",
        "control_bytes_per_node_s",
        "wall_s",
        "peak_rss_mb",
    ):
        assert key in report
    assert report["nodes"] == 6 and report["links"] == 6 and report["loops"] == 0
    assert report["forwarding_loops"] == 0 and report["reconverged_after_cut_s"] is not None


def test_topology_file_and_errors(tmp_path: Path) -> None:
    spec = {
        "nodes": ["a", "b", "c"],
        "links": [{"a": "a", "b": "b", "latency_ms": 5}, {"a": "b", "b": "c"}],
    }
    f = tmp_path / "t.json"
    f.write_text(json.dumps(spec))
    topology = load_file(f)
    assert topology.links[0].latency == 0.005
    result = CliRunner().invoke(cli, ["sim", "--file", str(f), "--duration", "5"])
    assert result.exit_code == 0 and "converged" in result.output
    f.write_text('{"nodes": ["a"], "links": [{"a": "a", "b": "z"}]}')
    with pytest.raises(TopologyError):
        load_file(f)
    bad = CliRunner().invoke(cli, ["sim", "--topology", "star:5"])
    assert bad.exit_code != 0 and "unknown topology" in bad.output
    bad = CliRunner().invoke(cli, ["sim", "--topology", "ring:5", "--cut", "0-3@1"])
    assert bad.exit_code != 0 and "no such link" in bad.output
    with pytest.raises(TopologyError):
        Cut.parse("a-b")


@pytest.mark.parametrize(
    ("timers", "bound"), [("reference", (20.0, 55.0)), ("pymycelium", (5.0, 12.0))]
)
def test_a_silent_cut_heals_within_the_dead_neighbour_time_of_the_timers(
    timers: str, bound: tuple[float, float]
) -> None:
    """Ring of 8: pulling a cable somewhere between two nodes is found by the dead-neighbour
    check only; every pair pings again soon after (the reference's timers take 33-53 s)."""
    args = ["--topology", "ring:8", "--duration", "150", "--cut", "0-1@60", "--silent"]
    result = CliRunner().invoke(cli, ["sim", *args, "--timers", timers, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["cuts_silent"] and report["loops"] == 0 and report["forwarding_loops"] == 0
    low, high = bound
    assert low <= report["reconverged_after_cut_s"] <= high
