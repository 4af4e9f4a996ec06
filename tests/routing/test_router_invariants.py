"""Routing invariants under churn: no forwarding loop ever, and recovery once links are back."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mycelium.routing import Forward, Router
from routing_lab import Lab, router_id

NAMES = ["a", "b", "c", "d", "e", "f"]
PAIRS = list(itertools.combinations(NAMES, 2))

topologies = st.sets(st.sampled_from(PAIRS), min_size=5, max_size=10)
events = st.lists(
    st.tuples(
        st.sampled_from(["cut", "link", "restart"]),
        st.sampled_from(PAIRS),
        st.floats(0.1, 30.0),
    ),
    max_size=8,
)


def assert_loop_free(lab: Lab) -> None:
    for src, dst in itertools.permutations(lab.routers, 2):
        lab.path(src, dst)  # raises on a loop


def restart(lab: Lab, name: str, generation: int) -> None:
    """The node comes back with the same key and a fresh router ID (seqno 0 again)."""
    old = lab.routers[name]
    neighbours = old.neighbours()
    for nb in neighbours:
        lab.routers[nb].remove_neighbour(name, lab.now)
    index = NAMES.index(name)
    lab.routers[name] = Router(router_id(index, generation), lab.now)
    for nb in neighbours:
        lab.routers[name].add_neighbour(nb, 10, lab.now)
        lab.routers[nb].add_neighbour(name, 10, lab.now)
    lab.flush()


def churn(links: set, script: list) -> Iterator[tuple[Lab, str | None]]:
    """The network of ``links``, left alone for 2 s and then put through ``script``: yields it
    after every half second of virtual time, with the node restarted since the last yield."""
    lab = Lab(NAMES)
    for i, (a, b) in enumerate(sorted(links)):
        lab.connect(a, b, latency=0.002 * (i + 1))
    generation = 2
    for kind, (a, b), dt in [("wait", PAIRS[0], 2.0), *script]:
        restarted = None
        up = (a, b) in lab.latency
        if kind == "cut" and up:
            lab.cut(a, b)
        elif kind == "link" and not up:
            lab.connect(a, b, latency=0.005)
        elif kind == "restart":
            generation += 1
            restart(lab, a, generation)
            restarted = a
        end = lab.now + dt
        while lab.now < end:
            lab.run(min(end, lab.now + 0.5))
            yield lab, restarted
            restarted = None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies, events)
def test_churn_never_loops_and_recovers(links: set, script: list) -> None:
    for lab, _ in churn(links, script):
        assert_loop_free(lab)
    # Reconnect everything. A new link carries the routes known before it only within the dump
    # budget (docs/routing.md §3.1), so every node asks for every other one, as its data plane
    # would; within a minute all answers arrive.
    for a, b in sorted(links):
        if (a, b) not in lab.latency:
            lab.connect(a, b, latency=0.005)
    lab.run(lab.now + 2.0)
    for _ in range(60):
        for src, dst in itertools.permutations(lab.routers, 2):
            lab.routers[src].route(_address(lab, dst), lab.now, origin=True)
        lab.run(lab.now + 1.0)
        assert_loop_free(lab)
    for src, dst in itertools.permutations(lab.routers, 2):
        if _connected(links, src, dst):
            assert lab.path(src, dst) is not None, (src, dst)


def _address(lab: Lab, name: str) -> bytes:
    return (lab.subnet(name).network | 1).to_bytes(16, "big")


def _connected(links: set, src: str, dst: str) -> bool:
    seen, todo = {src}, [src]
    while todo:
        x = todo.pop()
        for a, b in links:
            for u, v in ((a, b), (b, a)):
                if u == x and v not in seen:
                    seen.add(v)
                    todo.append(v)
    return dst in seen


def _answers(router: Router, lab: Lab, now: float) -> dict[str, tuple[object, bytes | None]]:
    """What the data plane keeps per address: the next hop of a ready route (or none), and the
    key that opens a source's packets."""
    out: dict[str, tuple[object, bytes | None]] = {}
    for name in lab.routers:
        address = _address(lab, name)
        decision = router.route(address, now)
        hop = (decision.neighbour, decision.public_key) if type(decision) is Forward else None
        out[name] = (hop, router.public_key_for(address))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies, events)
def test_an_unchanged_version_means_unchanged_answers(links: set, script: list) -> None:
    """The data plane trusts a route table whose ``version`` did not move (docs/wire.md §5.6)."""
    kept: dict[str, tuple[int, dict[str, tuple[object, bytes | None]]]] = {}
    for lab, restarted in churn(links, script):
        if restarted is not None:
            kept.pop(restarted, None)  # a new router: its versions start again
        for name, router in lab.routers.items():
            before = router.versioned.version
            answers = _answers(router, lab, lab.now)
            if name in kept and kept[name][0] == before:
                assert answers == kept[name][1], name
            kept[name] = (router.versioned.version, answers)
