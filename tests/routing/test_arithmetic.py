"""Seqno, metric and hold-time arithmetic (docs/routing.md §12 items 10 to 13)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mycelium.routing.arithmetic import hold_time, metric_add, metric_sub, seqno_gt, seqno_lt
from mycelium.routing.neighbour import Neighbour

seqnos = st.integers(0, 0xFFFF)


def test_seqno_comparison_vectors() -> None:
    assert seqno_lt(0, 32767)
    assert seqno_gt(32767, 0)
    assert not seqno_lt(0, 32768) and not seqno_gt(0, 32768)
    assert seqno_gt(0, 32769)
    assert seqno_gt(6, 60000)
    assert seqno_gt(0, 0xFFFF)  # wrap-around: 0 follows 65535


@given(seqnos, seqnos)
def test_seqno_order_is_antisymmetric(a: int, b: int) -> None:
    assert seqno_lt(a, b) == seqno_gt(b, a)
    assert not (seqno_lt(a, b) and seqno_gt(a, b))
    if a == b:
        assert not seqno_lt(a, b) and not seqno_gt(a, b)
    elif (a - b) & 0xFFFF != 0x8000:
        assert seqno_lt(a, b) or seqno_gt(a, b)


def test_metric_arithmetic_vectors() -> None:
    assert metric_add(0xFFF0, 0x20) == 0xFFFE
    assert metric_add(0xFFFE, 1) == 0xFFFE
    assert metric_add(0xFFFF, 0) == 0xFFFF
    assert metric_add(5, 0xFFFF) == 0xFFFF
    assert metric_sub(0xFFFF, 10) == 0xFFFF
    assert metric_sub(5, 10) == 0
    assert metric_sub(25, 10) == 15


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_finite_sums_never_become_infinite(a: int, b: int) -> None:
    total = metric_add(a, b)
    if a != 0xFFFF and b != 0xFFFF:
        assert total == min(a + b, 0xFFFE)
    else:
        assert total == 0xFFFF


def test_hold_time_vectors() -> None:
    assert hold_time(30000, 0) == 1050.0
    assert hold_time(47, 5) == 1.645
    assert hold_time(0, 5) == 0.0
    assert hold_time(30000, 0xFFFF) == 6.0


def test_link_cost_smoothing_vector() -> None:
    n = Neighbour("n", 10, now=0.0)
    seen = []
    t = 0.0
    for _ in range(10):
        t += 20.0
        n.last_hello_sent = t
        n.on_ihu(t + 0.020)
        seen.append(n.smoothed)
    assert seen == [902, 813, 733, 661, 596, 538, 486, 439, 397, 359]
    assert n.link_cost == 359 + 10
