"""The router's own bounds (routing/limits.py): a neighbour cannot grow our table, our CPU time or
our send queue without limit; below the limits nothing changes (the digest tests of the
simulator and the rule tests cover that)."""

from __future__ import annotations

import tracemalloc
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from mycelium.routing import Router
from mycelium.routing.limits import RouterLimits, TokenBucket
from mycelium.subnet import Subnet
from mycelium.wire.tlv import Hello, Ihu, RouteRequest, SeqnoRequest, Update
from routing_lab import announce, router_id


def router(limits: RouterLimits, now: float = 0.0) -> Router[str]:
    r: Router[str] = Router(router_id(100), now, limits)
    r.add_neighbour("n", 10, now)
    r.add_neighbour("m", 10, now)
    r.take_outgoing()
    return r


def test_one_neighbour_cannot_hold_more_than_its_share_of_the_table() -> None:
    r = router(RouterLimits(max_routes_per_neighbour=50))
    for seed in range(80):
        r.handle_tlv("n", announce(seed), 1.0)
    assert len(r.table) == 50
    assert r.counters.routes_refused_neighbour_limit == 30
    # Another neighbour still gets routes in, new ones and the refused ones alike.
    for seed in range(40, 90):
        r.handle_tlv("m", announce(seed), 2.0)
    assert len(r.table) == 90
    # Re-announcing what it holds is not refused: refreshes are not new entries.
    for seed in range(50):
        r.handle_tlv("n", announce(seed, seqno=1), 3.0)
    assert r.counters.routes_refused_neighbour_limit == 30


def test_the_whole_table_is_bounded_and_the_refused_are_not_propagated() -> None:
    r = router(RouterLimits(max_routes=60))
    r.handle_tlv("n", announce(0), 0.5)
    r.take_outgoing()
    for seed in range(1, 100):
        r.handle_tlv("n" if seed % 2 else "m", announce(seed), 1.0)
    assert len(r.table) == 60
    assert r.counters.routes_refused_table_full == 40
    flooded = {tlv.subnet for _, tlv in r.take_outgoing() if type(tlv) is Update}
    assert len(flooded) == 59


def test_route_memory_stays_bounded_under_a_flood_of_new_subnets() -> None:
    limits = RouterLimits(max_routes=2_000, max_routes_per_neighbour=2_000)
    r = router(limits)
    tracemalloc.start()
    for seed in range(7_000):  # the table fills, then bounded caches warm up
        r.handle_tlv("n", announce(seed), 1.0)
    r.take_outgoing()
    before, _ = tracemalloc.get_traced_memory()
    for seed in range(7_000, 27_000):
        r.handle_tlv("n", announce(seed), 1.0)
    r.take_outgoing()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(r.table) == 2_000
    assert r.counters.routes_refused_table_full == 27_000 - 2_000 - 1  # seed 100 is our own
    assert after - before < 50_000  # 20 000 refused routes would be ~5 MB in the table


def test_wildcard_dumps_are_rate_limited_per_neighbour_and_in_all() -> None:
    r = router(RouterLimits(dump_interval=30.0, dump_rate=0.05, dump_burst=2))
    for seed in range(20):
        r.handle_tlv("m", announce(seed), 0.5)
    r.take_outgoing()
    wildcard = RouteRequest(None, 0)
    dumped = []
    for i in range(100):  # one request every 0.1 s for 10 s from n
        r.handle_tlv("n", wildcard, 1.0 + i / 10)
        dumped.append(len(r.take_outgoing()))
    assert dumped[0] == 21 and sum(1 for d in dumped if d) == 1
    assert r.counters.dumps_rate_limited == 99
    # A second neighbour gets one when it connects (1.5 tokens left in all), a third connecting
    # at once only our /64; then neither gets one by asking.
    r.add_neighbour("x", 10, 11.0)
    r.add_neighbour("y", 10, 11.0)
    assert Counter(nb for nb, _ in r.take_outgoing()) == {"x": 21, "y": 1}
    assert r.counters.dumps_rate_limited == 100
    r.handle_tlv("x", wildcard, 11.0)
    r.handle_tlv("y", wildcard, 11.0)
    assert r.take_outgoing() == []
    # Thirty seconds later n may ask again.
    r.handle_tlv("n", wildcard, 31.5)
    assert len(r.take_outgoing()) == 21


def test_hellos_are_answered_at_a_bounded_rate() -> None:
    r = router(RouterLimits(ihu_rate=2.0, ihu_burst=10))
    answered = 0
    for i in range(10_000):  # 10 000 Hellos in one second
        r.handle_tlv("n", Hello(i & 0xFFFF, 2000), 1.0 + i / 10_000)
        answered += sum(1 for _, tlv in r.take_outgoing() if type(tlv) is Ihu)
    assert 10 <= answered <= 13
    assert r.counters.ihus_rate_limited == 10_000 - answered
    # A neighbour keeping the reference's pace (a Hello every 20 s, or ours) is always answered.
    for i in range(20):
        r.handle_tlv("m", Hello(i, 2000), 10.0 + i * 4.0)
        assert [type(t) for _, t in r.take_outgoing()] == [Ihu]


def test_route_and_seqno_requests_are_handled_at_a_bounded_rate_per_neighbour() -> None:
    limits = RouterLimits(request_rate=100.0, request_burst=500)
    r = router(limits)
    for seed in range(5):
        r.handle_tlv("m", announce(seed), 0.5)
    r.take_outgoing()
    target = announce(3)
    for i in range(5_000):  # 5 000 route requests in 1 s, for a subnet we know
        r.handle_tlv("n", RouteRequest(target.subnet, 0), 1.0 + i / 5_000)
    answers = len(r.take_outgoing())
    assert 500 <= answers <= 610
    assert r.counters.route_requests_rate_limited == 5_000 - answers
    for i in range(5_000):
        r.handle_tlv("n", SeqnoRequest(target.subnet, 1, target.router_id, 10), 2.0 + i / 5_000)
    assert r.counters.seqno_requests_rate_limited >= 5_000 - 610
    # m, the other neighbour, is not affected.
    r.handle_tlv("m", RouteRequest(announce(1).subnet, 0), 3.0)
    assert len(r.take_outgoing()) == 1


def test_route_requests_we_originate_are_rate_limited() -> None:
    r = router(RouterLimits(origin_rate=100.0, origin_burst=50))
    sent = set()
    for i in range(1_000):  # packets to 1 000 unknown /64s within 1 s
        dst = (0x0500 << 112 | i << 64 | 1).to_bytes(16, "big")
        r.route(dst, 1.0 + i / 1_000)
        sent |= {tlv.subnet for _, tlv in r.take_outgoing() if type(tlv) is RouteRequest}
    assert 50 <= len(sent) <= 160
    assert r.counters.origin_requests_rate_limited == 1_000 - len(sent)
    assert Subnet(0x0500 << 112, 64) in sent


@given(
    rate=st.floats(0.1, 1000.0),
    burst=st.integers(1, 1000),
    gaps=st.lists(st.floats(0.0, 5.0), max_size=200),
)
def test_a_token_bucket_never_allows_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst, 0.0)
    now = allowed = 0
    for gap in gaps:
        now += gap
        allowed += bucket.take(now)
    assert allowed <= burst + rate * now + 1e-6


def test_packets_we_forward_cannot_starve_route_requests_for_our_own() -> None:
    r = router(RouterLimits(origin_rate=10.0, origin_burst=20))
    for i in range(500):  # a neighbour sends transit packets to 500 unknown /64s
        r.route((0x0500 << 112 | i << 64 | 1).to_bytes(16, "big"), 1.0)
    flooded = {tlv.subnet for _, tlv in r.take_outgoing() if type(tlv) is RouteRequest}
    assert len(flooded) == 20
    ours = (0x0600 << 112 | 1).to_bytes(16, "big")
    r.route(ours, 1.0, origin=True)
    assert [tlv.subnet for _, tlv in r.take_outgoing()] == [Subnet(0x0600 << 112, 64)] * 2
