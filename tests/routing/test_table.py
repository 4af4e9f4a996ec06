"""The column-wise route table keeps the semantics of a list of entries per subnet (the selected
one swapped to the front, removal keeping the others' order), reuses what it frees, and keeps
each feasibility distance filed under its own router ID."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium.routing import Router
from mycelium.routing.source_table import SourceTable
from mycelium.routing.table import NONE, RouteTable
from mycelium.subnet import Subnet
from mycelium.wire.tlv import INFINITY, Update
from routing_lab import announce, lone_router, router_id

SUBNETS = [announce(seed).subnet for seed in range(1, 5)]
OWNERS = [announce(seed).router_id for seed in range(1, 5)]
OTHER_ID = router_id(1, suffix=2)  # the first origin, restarted

ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "select", "unselect"]),
        st.integers(0, len(SUBNETS) - 1),
        st.integers(0, 5),  # neighbour index
        st.booleans(),  # add: with the restarted origin's ID
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_table_behaves_like_a_list_per_subnet(script: list[tuple[str, int, int, bool]]) -> None:
    t = RouteTable()
    moved: dict[tuple[Subnet, bytes], tuple[int, int, float]] = {}
    for _ in range(6):
        t.new_neighbour_index([])
    # The model: subnet -> [neighbour, router ID, selected] per entry, in list order.
    model: dict[int, list[list[object]]] = {}
    for op, i, nb, other in script:
        subnet = SUBNETS[i]
        entries = model.get(i, [])
        found = [x for x in entries if x[0] == nb]
        s = t.slot(subnet)
        if op == "add" and not found:
            rid = OTHER_ID if other else OWNERS[i]
            if not entries:
                s = t.open(subnet, OWNERS[i], moved)
            t.add_entry(s, nb, 10 + nb, i, 100.0, rid)  # type: ignore[arg-type]
            model[i] = [*entries, [nb, rid, False]]
        elif op == "remove" and found:
            t.remove_entry(t.entry_for(s, nb))
            entries.remove(found[0])
            if not entries:
                del model[i]
        elif op == "select" and found:
            t.select(s, t.entry_for(s, nb))
            entries[0][2] = False
            j = entries.index(found[0])
            entries[0], entries[j] = entries[j], entries[0]
            entries[0][2] = True
        elif op == "unselect" and entries:
            t.unselect(s)
            entries[0][2] = False
        # Compare everything the router reads.
        assert len(t) == len(model)
        assert t.entry_count() == sum(len(v) for v in model.values())
        for j, subnet in enumerate(SUBNETS):
            want = model.get(j, [])
            s = t.slot(subnet)
            got = [] if s == NONE else list(t.entries(s))
            assert [t.e_nb[e] for e in got] == [x[0] for x in want]
            assert [t.router_id(e) for e in got] == [x[1] for x in want]
            assert [t.e_metric[e] for e in got] == [10 + x[0] for x in want]  # type: ignore[operator]
            assert (t.find(subnet) != NONE) == bool(want)
            if want:
                assert t.selected(s) == (got[0] if want[0][2] else NONE)
                assert t.owner(s) == OWNERS[j]
                found_match = t.longest_match(subnet.network | 1)
                assert found_match is not None and found_match[1] == s
            else:
                assert t.longest_match(subnet.network | 1) is None
        assert sum(t.nb_refs) == t.entry_count()
    # Everything freed is reused: no slot outlives its entries without a distance.
    assert len(t.index) == len(model)


def test_a_slot_reopened_by_a_new_router_id_keeps_each_distance_under_its_own_id() -> None:
    t = RouteTable()
    sources = SourceTable(t)
    nb = t.new_neighbour_index([])
    subnet, first, second = SUBNETS[0], OWNERS[0], OTHER_ID
    s = t.open(subnet, first, sources.other)
    e = t.add_entry(s, nb, 50, 7, 100.0, first)
    sources.note_sent((subnet, first), 7, 60, 0.0)  # filed in the slot's columns
    assert not sources.other and sources.get((subnet, first), 1.0) == (60, 7)
    sources.note_sent((subnet, second), 3, 90, 0.0)  # not the owner: the side dict
    assert sources.get((subnet, second), 1.0) == (90, 3)
    t.remove_entry(e)
    assert t.slot(subnet) == s  # kept: it holds a distance
    assert len(t) == 0 and t.longest_match(subnet.network) is None
    # The restarted origin's Update opens the slot again: owners swap places.
    assert t.open(subnet, second, sources.other) == s
    assert t.owner(s) == second
    assert sources.get((subnet, first), 1.0) == (60, 7)
    assert sources.get((subnet, second), 1.0) == (90, 3)
    assert list(sources.other) == [(subnet, first)]
    assert not sources.feasible((subnet, first), 7, 60, 1.0)
    assert sources.feasible((subnet, second), 3, 80, 1.0)
    # Both expire after the hold time; the slot is freed by the sweep.
    sources.sweep(10_000.0)
    assert sources.expired == 2 and len(sources) == 0
    assert t.slot(subnet) == NONE


def test_a_dead_neighbours_index_is_reused_only_once_no_entry_names_it() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    r.take_outgoing()
    r.remove_neighbour("n", 2.0)
    # The selected entry is held, retracted, for a few seconds: its index stays taken.
    assert [(v.neighbour, v.metric) for v in r.routes()] == [("n", INFINITY)]
    r.add_neighbour("x", 10, 3.0)
    r.handle_tlv("x", Update(dst.subnet, 0, 30, dst.router_id), 3.0)
    views = {(v.neighbour, v.metric) for v in r.routes()}
    assert ("n", INFINITY) in views and ("x", 30) in views
    n_index = 0  # "n" was added first
    assert r.table.nb_refs[n_index] == 1
    r.tick(30.0)  # the retraction expired and was removed
    assert r.table.nb_refs[n_index] == 0
    r.add_neighbour("y", 10, 31.0)
    r.handle_tlv("y", Update(dst.subnet, 0, 20, dst.router_id), 31.0)
    assert {v.neighbour for v in r.routes()} == {"x", "y"}
    assert len(r.table.nb_refs) == 3  # "y" took over the freed index


def test_router_state_is_reused_across_churn() -> None:
    """Routes learnt and lost many times leave the table no bigger than one round needs."""
    r = Router(router_id(100), 0.0)
    now = 0.0
    sizes = []
    for _ in range(5):
        r.add_neighbour("a", 10, now)
        for seed in range(1, 40):
            r.handle_tlv("a", announce(seed), now)
        r.take_outgoing()
        sizes.append((len(r.table.e_slot), len(r.table.head), len(r.table.nb_refs)))
        r.remove_neighbour("a", now)
        now += 20.0
        r.tick(now)
        assert len(r.table) == 0
    assert sizes[-1] == sizes[0]
