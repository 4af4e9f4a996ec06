"""The router's metric counters move on the events the reference counts (mycelium/src/router.rs),
driven on a virtual clock."""

from __future__ import annotations

from mycelium.routing import Router
from mycelium.routing.constants import FAST_HELLO, SOURCE_HOLD_DURATION
from mycelium.wire.tlv import INFINITY, Hello, Ihu, RouteRequest, SeqnoRequest, Update
from routing_lab import Lab, advance, announce, lone_router


def test_every_removal_counts_as_removed_and_died_once() -> None:
    r = lone_router()
    r.remove_neighbour("n", 1.0)
    c = r.counters
    assert (c.neighbours_added, c.neighbours_removed, c.neighbours_died) == (2, 1, 1)
    # "m" stops answering Hellos: the router declares it dead itself ...
    for second in range(2, round(FAST_HELLO.dead_after) + 2):
        r.tick(float(second))
    assert (c.neighbours_removed, c.neighbours_died) == (2, 2)
    # ... and the runtime closing its link afterwards is not a second removal.
    r.remove_neighbour("m", FAST_HELLO.dead_after + 2.0)
    assert (c.neighbours_removed, c.neighbours_died) == (2, 2)


def test_tlvs_are_counted_by_type_and_from_unknown_neighbours() -> None:
    r = lone_router()
    r.handle_tlv("n", Hello(0, 400), 1.0)
    r.handle_tlv("n", Ihu(0), 1.0)
    r.handle_tlv("n", RouteRequest(None, 0), 1.0)
    r.handle_tlv("n", RouteRequest(announce(7).subnet, 0), 1.0)
    r.handle_tlv("gone", Hello(0, 400), 1.0)
    c = r.counters
    assert {k.__name__: v for k, v in c.tlvs_by_type.items() if v} == {
        "Hello": 1,
        "Ihu": 1,
        "RouteRequest": 2,
    }
    assert c.wildcard_route_requests == 1
    assert c.tlvs_from_unknown_neighbour == 1


def test_each_propagation_of_a_selected_route_is_a_triggered_update() -> None:
    r = lone_router()
    dst = announce(7)
    c = r.counters
    r.handle_tlv("n", dst, 1.0)  # acquired
    assert c.triggered_updates == 1
    r.handle_tlv("n", dst, 2.0)  # a refresh changes nothing
    assert c.triggered_updates == 1
    r.handle_tlv("m", Update(dst.subnet, 0, 50, dst.router_id), 2.0)  # a fallback only
    assert c.triggered_updates == 1
    r.remove_neighbour("n", 3.0)  # reselection onto "m"
    assert (c.triggered_updates, c.route_selections) == (2, 1)
    advance(r, 3.0, 3.0 + 1051.0)  # the route through "m" expires while selected
    assert (c.triggered_updates, c.route_selections) == (3, 1)
    assert (c.selected_routes_expired, c.routes_expired_retracted) == (1, 1)


def test_updates_that_cannot_be_selected_skip_route_selection() -> None:
    r = lone_router()
    dst = announce(7, seqno=5)
    c = r.counters
    r.handle_tlv("n", Update(dst.subnet, 5, INFINITY, dst.router_id), 1.0)
    assert (c.updates_not_interested, c.updates_skipped_selection) == (1, 0)  # unknown subnet
    r.handle_tlv("n", dst, 1.0)
    r.take_outgoing()  # our Update to "m" lowers the feasibility distance to (5, 10)
    r.handle_tlv("m", Update(dst.subnet, 4, 0, dst.router_id), 2.0)  # older seqno: unfeasible
    r.handle_tlv("m", Update(dst.subnet, 5, INFINITY, dst.router_id), 2.0)  # a new retraction
    assert (c.updates_not_interested, c.updates_skipped_selection) == (1, 2)
    assert c.triggered_updates == 1


def test_an_answer_for_a_neighbour_that_died_meanwhile_is_not_sent() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    r.handle_tlv("m", SeqnoRequest(dst.subnet, 5, dst.router_id, 10), 2.0)  # forwarded to "n"
    r.remove_neighbour("m", 3.0)
    r.take_outgoing()
    r.handle_tlv("n", Update(dst.subnet, 5, 0, dst.router_id), 4.0)
    assert r.take_outgoing() == []
    assert r.counters.updates_to_dead_neighbour == 1


def test_source_keys_expire_after_their_hold_time() -> None:
    lab = Lab(["a", "b", "c"])
    lab.connect("a", "b")
    lab.connect("b", "c")
    lab.run(10.0)
    b: Router = lab.routers["b"]
    assert b.sources.expired == 0
    lab.cut("a", "b")
    lab.cut("b", "c")
    b.tick(10.0 + 2 * SOURCE_HOLD_DURATION)
    # Our own subnet's and the two routes' feasibility distances.
    assert b.sources.expired == 3
