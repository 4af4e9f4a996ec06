"""One test per rule of the reference router (docs/routing.md §3 to §7, §12 items 14 to 31)."""

from __future__ import annotations

import math

import pytest

from mycelium.routing import Forward, Local, NoRoute, Queue, Router
from mycelium.routing.constants import FAST_HELLO, PAUSE_THRESHOLD, REFERENCE_HELLO, HelloTimers
from mycelium.routing.source_table import SourceTable
from mycelium.subnet import Subnet
from mycelium.wire.tlv import INFINITY, Hello, Ihu, RouteRequest, SeqnoRequest, Update
from routing_lab import Lab, advance, announce, lone_router, router_id


def address_in(subnet: Subnet, host: int = 1) -> bytes:
    return (subnet.network | host).to_bytes(16, "big")


# --- neighbours ------------------------------------------------------------------------------


def test_new_neighbour_gets_our_subnet_and_pending_queries_before_any_hello() -> None:
    r = Router(router_id(1), 0.0)
    r.add_neighbour("a", 10, 0.0)
    r.take_outgoing()
    wanted = announce(7).subnet
    assert type(r.route(address_in(wanted), 1.0, origin=True)) is Queue
    r.take_outgoing()
    r.add_neighbour("b", 10, 2.0)
    out = r.take_outgoing()
    assert [type(t) for _, t in out] == [Update, RouteRequest]
    own = out[0][1]
    assert own == Update(r.subnet, 0, 0, r.router_id, 30000)
    assert out[1] == ("b", RouteRequest(wanted, 0))


def test_new_neighbour_also_gets_our_selected_routes_after_our_subnet() -> None:
    r = lone_router()
    via_n, via_m = announce(7), announce(8)
    r.handle_tlv("n", via_n, 1.0)
    r.handle_tlv("m", via_m, 1.0)
    r.take_outgoing()
    r.add_neighbour("o", 10, 2.0)
    out = r.take_outgoing()
    assert out[0] == ("o", Update(r.subnet, 0, 0, r.router_id, 30000))
    assert sorted((nb, t.subnet, t.seqno, t.metric) for nb, t in out[1:]) == sorted(  # type: ignore[union-attr]
        [("o", via_n.subnet, 0, 1010), ("o", via_m.subnet, 0, 1010)]
    )


def test_a_link_that_comes_up_later_carries_the_routes_known_before() -> None:
    """b learned a's /64 before c connected: c hears it at once, without asking and without
    waiting for the route to change (which is all the reference would send it)."""
    lab = Lab(["a", "b", "c"])
    lab.connect("a", "b")
    lab.run(1.0)
    lab.connect("b", "c")
    lab.run(1.1)
    assert lab.path("c", "a") == ["c", "b", "a"]
    assert not lab.sent(kind=RouteRequest)


@pytest.mark.parametrize("timers", [REFERENCE_HELLO, FAST_HELLO], ids=["reference", "ours"])
def test_hellos_are_sent_each_interval_and_answered_by_one_ihu_carrying_our_link_cost(
    timers: HelloTimers,
) -> None:
    r = Router(router_id(1), 0.0, hello=timers)
    r.add_neighbour("a", 15, 0.0)
    r.take_outgoing()
    assert r.next_deadline() <= timers.check_every  # dead-neighbour check
    first, second = timers.interval, 2 * timers.interval
    r.tick(first)
    hellos = [t for _, t in r.take_outgoing() if type(t) is Hello]
    assert hellos == [Hello(0, timers.interval_cs)]
    r.tick(second)
    assert [t for _, t in r.take_outgoing() if type(t) is Hello] == [Hello(1, timers.interval_cs)]
    r.handle_tlv("a", Ihu(5, 6000), second + 0.050)
    assert r.link_cost("a") == (1000 * 9 + 50) // 10 + 15
    r.handle_tlv("a", Hello(9, 2000), second + 1.0)
    expected = Ihu(r.link_cost("a"), 3 * timers.interval_cs)  # type: ignore[arg-type]
    assert r.take_outgoing() == [("a", expected)]


def test_the_reference_hellos_every_20s_and_ours_every_3s() -> None:
    assert (REFERENCE_HELLO.interval_cs, REFERENCE_HELLO.ihu_interval_cs) == (2000, 6000)
    assert (REFERENCE_HELLO.dead_after, REFERENCE_HELLO.check_every) == (43.0, 10.0)
    assert (FAST_HELLO.interval, FAST_HELLO.dead_after, FAST_HELLO.check_every) == (3, 10, 1)


@pytest.mark.parametrize("timers", [REFERENCE_HELLO, FAST_HELLO], ids=["reference", "ours"])
def test_a_neighbour_without_ihu_past_the_threshold_is_declared_dead(timers: HelloTimers) -> None:
    r = Router(router_id(1), 0.0, hello=timers)
    r.add_neighbour("a", 10, 0.0)
    t = 0.0
    while t + timers.check_every <= timers.dead_after:
        t += timers.check_every
        r.tick(t)
    assert r.take_dead_neighbours() == []
    r.tick(t + timers.check_every)
    assert r.take_dead_neighbours() == ["a"]
    assert r.link_cost("a") is None


@pytest.mark.parametrize("timers", [REFERENCE_HELLO, FAST_HELLO], ids=["reference", "ours"])
def test_a_pause_of_the_node_itself_does_not_count_against_its_neighbours(
    timers: HelloTimers,
) -> None:
    """Stopped (SIGSTOP, a paused VM, a blocked loop) for longer than the dead threshold, the
    node sent no Hellos: on waking it says Hello at once and gives each neighbour the silence
    it had left, instead of declaring every one of them dead."""
    r = Router(router_id(1), 0.0, hello=timers)
    r.add_neighbour("a", 10, 0.0)
    r.add_neighbour("b", 10, 0.0)
    r.take_outgoing()
    silent_a = timers.dead_after - 2 * timers.check_every  # "a" last answered 2 checks short
    r.handle_tlv("a", Ihu(0), 0.0)
    t = 0.0
    while t + timers.check_every <= silent_a:  # on time, "b" answering every Hello
        t += timers.check_every
        r.tick(t)
        r.handle_tlv("b", Ihu(0), t)
    assert r.take_dead_neighbours() == []
    woke = t + timers.check_every + 5 * timers.dead_after  # the next check, very late
    r.tick(woke)
    assert r.take_dead_neighbours() == []
    assert {n for n, tlv in r.take_outgoing() if type(tlv) is Hello} == {"a", "b"}
    # Neither answers now: "a" dies once its silence before and after the pause adds up.
    last = woke
    while not r.dead:
        last += timers.check_every
        r.tick(last)
    assert r.take_dead_neighbours() == ["a"]
    before = t + timers.check_every  # the silence "a" had when the pause began (a check due)
    checks = math.floor((timers.dead_after - before) / timers.check_every) + 1
    assert last - woke == pytest.approx(checks * timers.check_every)


def test_a_dead_check_late_by_less_than_the_pause_threshold_is_on_time() -> None:
    r = Router(router_id(1), 0.0, hello=FAST_HELLO)
    r.add_neighbour("a", 10, 0.0)
    t = 0.0
    while t + 1.0 <= FAST_HELLO.dead_after:
        t += 1.0
        r.tick(t)
    r.tick(t + 1.0 + PAUSE_THRESHOLD * 0.9)  # a busy loop's lateness is not a pause
    assert r.take_dead_neighbours() == ["a"]


@pytest.mark.parametrize("timers", [REFERENCE_HELLO, FAST_HELLO], ids=["reference", "ours"])
def test_ihu_keeps_a_neighbour_alive(timers: HelloTimers) -> None:
    r = Router(router_id(1), 0.0, hello=timers)
    r.add_neighbour("a", 10, 0.0)
    t = 0.0
    while t < 200:
        t += timers.interval
        r.tick(t)
        r.handle_tlv("a", Ihu(0), t + 0.01)
    assert r.take_dead_neighbours() == []


# --- updates and filters ----------------------------------------------------------------------


def test_two_nodes_learn_each_other_with_metric_zero() -> None:
    lab = Lab(["a", "b"])
    lab.connect("a", "b")
    lab.run(1.0)
    views = lab.routers["a"].routes()
    assert [(v.subnet, v.metric, v.selected, v.neighbour) for v in views] == [
        (lab.subnet("b"), 0, True, "b")
    ]


def test_update_filters() -> None:
    r = lone_router()
    good = announce(7)
    wrong_key = Update(good.subnet, 0, 0, router_id(8))
    short = Update(Subnet(good.subnet.network, 48), 0, 0, good.router_id)
    outside = Update(Subnet.parse("2001:db8::/64"), 0, 0, good.router_id)
    for bad in (wrong_key, short, outside):
        r.handle_tlv("n", bad, 1.0)
    assert r.routes() == []
    assert r.counters.updates_filtered == 3
    # A retraction for a subnet we have no entry for creates nothing.
    r.handle_tlv("n", Update(good.subnet, 0, INFINITY, router_id(9)), 1.0)
    assert r.routes() == []
    assert r.counters.updates_not_interested == 1
    r.handle_tlv("n", good, 1.0)
    assert [v.selected for v in r.routes()] == [True]
    # ... but retracts an existing entry, whoever's router ID it carries.
    r.handle_tlv("n", Update(good.subnet, 3, INFINITY, router_id(9)), 2.0)
    assert [(v.metric, v.selected) for v in r.routes()] == [(INFINITY, False)]


def test_own_subnet_is_never_learned() -> None:
    r = lone_router()
    r.handle_tlv("n", Update(r.subnet, 5, 3, r.router_id), 1.0)
    assert r.routes() == []


def test_unfeasible_update_for_selected_route_asks_for_a_newer_seqno() -> None:
    lab = Lab(["a", "b", "c"])
    lab.connect("a", "b")
    lab.connect("b", "c")
    lab.run(2.0)
    b = lab.routers["b"]
    c_update = announce(2)  # c's router ID is router_id(2)
    sre = b.selected_entry(lab.subnet("c"))
    assert sre is not None and sre.metric == 0
    # b advertised c's route to a: FD at b = (seqno 0, metric 0 + link cost). An update with the
    # same seqno and a metric >= FD from c (same router ID) is unfeasible.
    fd = b.sources.get((lab.subnet("c"), c_update.router_id), lab.now)
    assert fd is not None
    b.take_outgoing()
    b.handle_tlv("c", Update(lab.subnet("c"), 0, fd[0] + 5, c_update.router_id), lab.now)
    out = b.take_outgoing()
    assert out == [("c", SeqnoRequest(lab.subnet("c"), 1, c_update.router_id, 64))]
    assert b.selected_entry(lab.subnet("c")).metric == 0  # type: ignore[union-attr]


def test_selection_hysteresis_keeps_the_current_route_unless_11_better_or_direct() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", Update(dst.subnet, 0, 100, dst.router_id), 1.0)
    assert r.selected_entry(dst.subnet).neighbour.id == "n"  # type: ignore[union-attr]
    r.handle_tlv("m", Update(dst.subnet, 0, 90, dst.router_id), 1.0)  # 10 better
    assert r.selected_entry(dst.subnet).neighbour.id == "n"  # type: ignore[union-attr]
    r.handle_tlv("m", Update(dst.subnet, 0, 89, dst.router_id), 1.0)  # 11 better
    assert r.selected_entry(dst.subnet).neighbour.id == "m"  # type: ignore[union-attr]
    r.handle_tlv("n", Update(dst.subnet, 0, 0, dst.router_id), 1.0)  # direct route wins
    assert r.selected_entry(dst.subnet).neighbour.id == "n"  # type: ignore[union-attr]


def test_triggered_update_on_acquisition_skips_the_next_hop() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    out = r.take_outgoing()
    assert [(nb, t.metric) for nb, t in out] == [("m", 0 + 1000 + 10)]  # type: ignore[union-attr]
    assert out[0][1].interval_cs == 30000  # type: ignore[union-attr]


def test_losing_the_only_neighbour_retracts_with_our_own_router_id_and_seqno() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    r.take_outgoing()
    r.remove_neighbour("n", 2.0)
    out = r.take_outgoing()
    # The retraction, and (our deviation) a seqno request to the neighbour left: no neighbour
    # holds a finite route it could forward the request along, so all are asked.
    assert out == [
        ("m", SeqnoRequest(dst.subnet, 1, dst.router_id, 64)),
        ("m", Update(dst.subnet, 0, INFINITY, r.router_id, 30000)),
    ]
    assert r.take_route_changes() == [dst.subnet]
    # The infinite entry lingers 6 s, then disappears silently.
    r.tick(8.1)
    assert r.routes() == []
    assert [t for _, t in r.take_outgoing() if type(t) is Update] == []


def test_dead_next_hop_with_alternatives_sends_seqno_request_only_when_none_usable() -> None:
    r = lone_router()
    r.add_neighbour("o", 10, 0.0)
    r.take_outgoing()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    r.handle_tlv("m", Update(dst.subnet, 0, 50, dst.router_id), 1.0)
    r.take_outgoing()
    r.remove_neighbour("n", 2.0)
    out = r.take_outgoing()
    assert not [t for _, t in out if type(t) is SeqnoRequest]
    assert r.selected_entry(dst.subnet).neighbour.id == "m"  # type: ignore[union-attr]
    assert {nb for nb, t in out if type(t) is Update} == {"o"}


def test_a_next_hop_with_another_router_id_hears_our_retraction() -> None:
    """The destination restarted (same key, new router ID): our new next hop m may still hold
    our Update for the old router ID, feasible there by that ID's distance; it is withdrawn."""
    r = lone_router()
    old, restarted = announce(7), announce(7, suffix=2)
    r.handle_tlv("n", Update(old.subnet, 0, 500, old.router_id), 1.0)
    r.take_outgoing()
    r.handle_tlv("m", Update(restarted.subnet, 0, 0, restarted.router_id), 3.0)
    out = r.take_outgoing()
    assert ("m", Update(old.subnet, 0, INFINITY, r.router_id, 30000)) in out
    assert ("n", Update(old.subnet, 0, 1010, restarted.router_id, 30000)) in out


def test_a_next_hop_with_the_same_router_id_hears_no_retraction() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", Update(dst.subnet, 0, 500, dst.router_id), 1.0)
    r.take_outgoing()
    r.handle_tlv("m", Update(dst.subnet, 0, 0, dst.router_id), 2.0)
    assert r.selected_entry(dst.subnet).neighbour.id == "m"  # type: ignore[union-attr]
    assert [t for _, t in r.take_outgoing() if type(t) is Update and t.metric == INFINITY] == []


def test_route_expires_after_its_hold_time_and_is_retracted() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    r.take_outgoing()
    advance(r, 1.0, 1050.5)
    assert r.selected_entry(dst.subnet) is not None
    r.tick(1051.0)
    out = r.take_outgoing()
    assert ("m", Update(dst.subnet, 0, INFINITY, r.router_id, 30000)) in out
    assert ("n", Update(dst.subnet, 0, INFINITY, r.router_id, 30000)) in out
    c = r.counters
    assert (c.selected_routes_expired, c.routes_expired_retracted, c.route_selections) == (1, 1, 0)
    advance(r, 1051.0, 1057.5)
    assert r.routes() == []
    assert c.routes_expired_removed == 1  # the retracted entry, after its hold time


# --- route requests ---------------------------------------------------------------------------


def test_owner_answers_a_route_request_to_the_requester_only() -> None:
    r = lone_router()
    r.handle_tlv("n", RouteRequest(r.subnet, 15), 1.0)
    assert r.take_outgoing() == [("n", Update(r.subnet, 0, 0, r.router_id, 30000))]


def test_unknown_request_is_forwarded_with_next_generation_and_marked_queried() -> None:
    r = lone_router()
    wanted = announce(7).subnet
    r.handle_tlv("n", RouteRequest(wanted, 14), 1.0)
    assert r.take_outgoing() == [("m", RouteRequest(wanted, 15))]
    assert [s for s, _ in r.queried_subnets(1.0)] == [wanted]
    left = dict(r.queried_subnets(5.0))[wanted]
    assert 10.9 < left <= 11.0
    other = announce(8).subnet
    r.handle_tlv("n", RouteRequest(other, 15), 1.0)
    assert r.take_outgoing() == []
    assert other not in dict(r.queried_subnets(1.0))
    r.tick(16.5)
    assert r.queried_subnets(16.5) == []


def test_short_and_foreign_requests_are_ignored() -> None:
    r = lone_router()
    for bad in (Subnet.parse("400::/7"), Subnet.parse("2001:db8::/64")):
        r.handle_tlv("n", RouteRequest(bad, 0), 1.0)
    assert r.take_outgoing() == []
    assert r.queried_subnets(1.0) == []
    assert r.counters.requests_ignored == 2


def test_request_is_answered_from_a_selected_route_not_through_the_requester() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    r.take_outgoing()
    r.handle_tlv("n", RouteRequest(dst.subnet, 0), 2.0)
    assert r.take_outgoing() == []  # the requester is our next hop: silence
    r.handle_tlv("m", RouteRequest(dst.subnet, 0), 2.0)
    out = r.take_outgoing()
    assert [(nb, t.metric) for nb, t in out] == [("m", 1010)]  # type: ignore[union-attr]


def test_origin_lookup_queues_and_requests_once_per_15s_then_delivers() -> None:
    lab = Lab(["a", "b", "c"])
    lab.connect("a", "b")
    lab.connect("b", "c")
    lab.run(1.0)
    # Forget everything a learned by the join floods, then ask for c again.
    a = Router(router_id(0, 2), lab.now)
    lab.routers["a"] = a
    a.add_neighbour("b", 10, lab.now)
    lab.routers["b"].remove_neighbour("a", lab.now)
    lab.routers["b"].add_neighbour("a", 10, lab.now)
    lab.run(lab.now + 0.001)  # deliver only the connect-time updates sent so far
    dst = address_in(lab.subnet("c"))
    start = lab.now
    assert type(a.route(dst, lab.now, origin=True)) is Queue
    assert type(a.route(dst, lab.now, origin=True)) is Queue
    lab.flush()
    asked = [(s, d, t) for s, d, t in lab.sent(start, RouteRequest) if s == "a"]
    assert asked == [("a", "b", RouteRequest(lab.subnet("c"), 0))]  # once, though asked twice
    lab.run(lab.now + 1.0)
    assert lab.subnet("c") in a.take_route_changes()
    assert a.route(dst, lab.now, origin=True) == Forward("b", router_id(2).public_key)


def test_route_request_flow_through_a_chain_reaches_the_owner_and_floods_back() -> None:
    lab = Lab(["a", "b", "c", "d", "e"])
    lab.connect("a", "b")
    lab.connect("b", "c")
    lab.connect("c", "d")
    lab.connect("c", "e")
    lab.run(1.0)
    # Every join flooded: everyone knows everyone.
    for src in lab.routers:
        for dst in lab.routers:
            if src != dst:
                assert lab.path(src, dst) is not None, (src, dst)


def test_forwarding_without_a_route_queues_at_transit_and_no_route_for_unselected() -> None:
    r = lone_router()
    dst = announce(7)
    assert type(r.route(address_in(dst.subnet), 1.0)) is Queue
    r.handle_tlv("n", dst, 1.0)
    r.handle_tlv("n", Update(dst.subnet, 0, INFINITY, dst.router_id), 2.0)
    assert r.route(address_in(dst.subnet), 2.0) == NoRoute()
    # At the origin the same state asks the old source for a newer seqno and queues.
    r.take_outgoing()
    # (the loss itself already asked n at t=2; the origin's request waits out the 4 s guard)
    assert type(r.route(address_in(dst.subnet), 7.0, origin=True)) is Queue
    assert any(type(t) is SeqnoRequest for _, t in r.take_outgoing())


def test_local_and_forward_decisions_carry_the_owner_key() -> None:
    r = lone_router()
    assert r.route(address_in(r.subnet, 5), 0.0) == Local()
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    assert r.route(address_in(dst.subnet), 2.0) == Forward("n", dst.router_id.public_key)
    assert r.public_key_for(address_in(dst.subnet, 9)) == dst.router_id.public_key


def test_almost_expired_route_in_use_is_refreshed_by_a_route_request() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", dst, 0.0)
    r.take_outgoing()
    r.route(address_in(dst.subnet), 1000.0)
    assert r.take_outgoing() == []
    r.route(address_in(dst.subnet), 1040.0)
    out = r.take_outgoing()
    assert {nb for nb, t in out if type(t) is RouteRequest} == {"n", "m"}
    r.handle_tlv("n", dst, 1041.0)
    assert r.selected_entry(dst.subnet).expires == 1041.0 + 1050.0  # type: ignore[union-attr]


# --- seqno requests ---------------------------------------------------------------------------


def test_seqno_request_for_us_bumps_once_per_4s() -> None:
    r = lone_router()
    ask = SeqnoRequest(r.subnet, 1, r.router_id, 64)
    r.handle_tlv("n", ask, 2.0)
    assert r.seqno == 0  # the first 4 s after start never bump
    r.handle_tlv("m", ask, 5.0)
    assert r.seqno == 1
    assert {nb for nb, t in r.take_outgoing() if t == Update(r.subnet, 1, 0, r.router_id)} == {
        "n",
        "m",
    }
    r.handle_tlv("n", SeqnoRequest(r.subnet, 2, r.router_id, 64), 7.0)
    assert r.seqno == 1
    r.handle_tlv("n", SeqnoRequest(r.subnet, 1, r.router_id, 64), 20.0)  # not newer
    assert r.seqno == 1 and r.take_outgoing() == []
    assert {k: v for k, v in r.counters.seqno_requests.items() if v} == {
        "bump_seqno": 1,
        "unhandled": 1,
    }


def test_seqno_request_is_forwarded_to_one_feasible_neighbour_and_deduplicated() -> None:
    r = lone_router()
    r.add_neighbour("o", 10, 0.0)
    dst = announce(7)
    r.handle_tlv("n", dst, 1.0)
    r.take_outgoing()
    ask = SeqnoRequest(dst.subnet, 5, dst.router_id, 10)
    r.handle_tlv("m", ask, 2.0)
    assert r.take_outgoing() == [("n", SeqnoRequest(dst.subnet, 5, dst.router_id, 9))]
    r.handle_tlv("o", ask, 3.0)
    assert r.take_outgoing() == []  # same key within 60 s
    # The answer (exactly the requested seqno) goes back to whoever asked.
    r.handle_tlv("n", Update(dst.subnet, 5, 0, dst.router_id), 4.0)
    out = r.take_outgoing()
    assert ("m", Update(dst.subnet, 5, 1010, dst.router_id)) in out
    # Hop count 1 is not forwarded.
    r.handle_tlv("m", SeqnoRequest(dst.subnet, 9, dst.router_id, 1), 5.0)
    assert r.take_outgoing() == []
    assert {k: v for k, v in r.counters.seqno_requests.items() if v} == {
        "forward_feasible": 1,
        "unhandled": 1,
        "ttl_expired": 1,
    }


def test_seqno_request_answered_from_selected_route_with_newer_seqno() -> None:
    r = lone_router()
    dst = announce(7, seqno=6)
    r.handle_tlv("n", dst, 1.0)
    r.take_outgoing()
    r.handle_tlv("m", SeqnoRequest(dst.subnet, 6, dst.router_id, 64), 2.0)
    assert r.take_outgoing() == [("m", Update(dst.subnet, 6, 1010, dst.router_id))]
    assert r.counters.seqno_requests["reply_local"] == 1


def test_routes_view_shows_received_metrics() -> None:
    r = lone_router()
    dst = announce(7)
    r.handle_tlv("n", Update(dst.subnet, 3, 40, dst.router_id), 1.0)
    r.handle_tlv("m", Update(dst.subnet, 3, 70, dst.router_id), 1.0)
    views = sorted((v.neighbour, v.metric, v.seqno, v.selected) for v in r.routes())
    assert views == [("m", 70, 3, False), ("n", 40, 3, True)]


# --- source table -----------------------------------------------------------------------------


def test_feasibility_distances_are_forgotten_30_minutes_after_their_last_update() -> None:
    table = SourceTable()
    key = (announce(7).subnet, router_id(7))
    table.note_sent(key, 5, 100, 0.0)
    assert not table.feasible(key, 5, 100, 1799.0)  # not better than what we advertised
    table.note_sent(key, 5, 100, 1000.0)  # refreshed
    assert table.get(key, 2799.0) == (100, 5)
    assert table.get(key, 2800.0) is None
    table.note_sent(key, 6, 90, 2800.0)
    table.sweep(5000.0)
    assert len(table) == 0 and table.expired == 2


def test_a_silently_cut_link_heals_as_soon_as_it_is_declared_dead() -> None:
    """Ring of 8 with chords 0-4 and 2-6; the link 0-1 goes silent. Both ends find each other
    through the ring right after the dead-neighbour check, not after more timeouts (the
    reference's seqno-request dedup would hold the request for a minute)."""
    names = [str(i) for i in range(8)]
    lab = Lab(names)
    for a, b in [*((i, (i + 1) % 8) for i in range(8)), (0, 4), (2, 6)]:
        lab.connect(str(a), str(b), latency=0.001)
    lab.run(30.0)
    assert lab.path("0", "1") == ["0", "1"]
    lab.drop = lambda src, dst, tlv: {src, dst} == {"0", "1"}
    cut = lab.now
    while lab.path("0", "1") in (None, ["0", "1"]) or lab.path("1", "0") in (None, ["1", "0"]):
        lab.run(lab.now + 0.5)
        assert lab.now - cut < FAST_HELLO.dead_after + FAST_HELLO.check_every + 2
    assert len(lab.path("0", "1") or []) >= 3


def test_the_version_moves_with_every_change_the_data_plane_could_have_kept() -> None:
    """docs/wire.md §5.6: a next hop someone asked for that changes, a new prefix, a lost one."""
    r = lone_router()
    dst = announce(7)
    address = address_in(dst.subnet)
    r.handle_tlv("n", Update(dst.subnet, 0, 100, dst.router_id), 1.0)
    assert r.route(address, 1.0) == Forward("n", dst.router_id.public_key)
    v = r.versioned.version
    r.handle_tlv("m", Update(dst.subnet, 0, 89, dst.router_id), 1.0)  # m now better: switch
    assert r.versioned.version != v and r.route(address, 1.0) == Forward(
        "m", dst.router_id.public_key
    )
    v = r.versioned.version
    r.handle_tlv("n", Update(dst.subnet, 0, 150, dst.router_id), 1.0)  # not selected: no change
    assert r.versioned.version == v
    r.handle_tlv("m", Update(dst.subnet, 0, INFINITY, dst.router_id), 1.0)  # retracted: back to n
    assert r.versioned.version != v and r.route(address, 1.0) == Forward(
        "n", dst.router_id.public_key
    )
    v = r.versioned.version
    other = announce(8)
    r.handle_tlv("n", other, 1.0)  # a new prefix could be a longer match for a kept address
    assert r.versioned.version != v
