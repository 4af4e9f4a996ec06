"""Choosing the DNS upstream from a real router's table (docs/extras.md §2.2)."""

from __future__ import annotations

from mycelium.dns.upstream import EVALUATE_INTERVAL, PUBLIC_NODES, choose
from mycelium.identity import node_subnet
from mycelium.routing import Router
from mycelium.wire.tlv import INFINITY, Ihu, RouteRequest, Update
from routing_lab import router_id


def node_address(seed: int) -> tuple[bytes, Update]:
    rid = router_id(seed)
    subnet = node_subnet(rid.public_key)
    return (subnet.network | 1).to_bytes(16, "big"), Update(subnet, 0, 0, rid)


def router_with(neighbours: dict[str, int]) -> Router:
    """A router whose neighbours have the given link costs (static cost, IHU at once)."""
    r = Router(router_id(1), 0.0)
    for name, cost in neighbours.items():
        r.add_neighbour(name, cost, 0.0)
        r.handle_tlv(name, Ihu(0), 0.0)
    r.take_outgoing()
    return r


def test_the_cheapest_selected_route_wins_metric_plus_link_cost() -> None:
    r = router_with({"near": 10, "far": 200})
    (a, ua), (b, ub), (c, _) = (node_address(s) for s in (7, 8, 9))
    r.handle_tlv("far", Update(ua.subnet, 0, 5, ua.router_id), 1.0)  # 5 + far link
    r.handle_tlv("near", Update(ub.subnet, 0, 50, ub.router_id), 1.0)  # 50 + near link
    r.take_outgoing()
    assert choose(r, [a, b, c], 2.0) == b
    # The unknown candidate was looked up; known ones were not.
    requests = [(n, t) for n, t in r.take_outgoing() if type(t) is RouteRequest]
    assert {t.subnet for _, t in requests} == {node_subnet(router_id(9).public_key)}


def test_ties_keep_the_earlier_candidate() -> None:
    r = router_with({"n": 10})
    (a, ua), (b, ub) = (node_address(s) for s in (7, 8))
    for u in (ua, ub):
        r.handle_tlv("n", Update(u.subnet, 0, 30, u.router_id), 1.0)
    assert choose(r, [b, a], 2.0) == b
    assert choose(r, [a, b], 2.0) == a


def test_nothing_selected_means_the_fallback_and_lookups_once() -> None:
    r = router_with({"n": 10})
    assert choose(r, PUBLIC_NODES, 1.0) is None
    first = [t for _, t in r.take_outgoing() if type(t) is RouteRequest]
    assert len(first) == len(PUBLIC_NODES)
    assert choose(r, PUBLIC_NODES, 2.0) is None  # queries still in flight: not asked again
    assert [t for _, t in r.take_outgoing() if type(t) is RouteRequest] == []
    # The next round, long after those queries expired unanswered, asks again.
    assert choose(r, PUBLIC_NODES, 1.0 + EVALUATE_INTERVAL) is None
    again = [t for _, t in r.take_outgoing() if type(t) is RouteRequest]
    assert {t.subnet for t in again} == {t.subnet for t in first}


def test_a_retracted_route_is_skipped_without_a_lookup() -> None:
    """Routes known but none selected (the reference's "fallback" status): no candidate, and
    nothing to look up either."""
    r = router_with({"n": 10})
    a, ua = node_address(7)
    r.handle_tlv("n", ua, 1.0)
    r.handle_tlv("n", Update(ua.subnet, 1, INFINITY, ua.router_id), 2.0)
    r.take_outgoing()
    assert choose(r, [a], 3.0) is None
    assert [t for _, t in r.take_outgoing() if type(t) is RouteRequest] == []
