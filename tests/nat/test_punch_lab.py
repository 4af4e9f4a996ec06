"""Negotiation and checks together, between hosts behind simulated NATs (``nat_sim``)."""

from __future__ import annotations

import pytest

from mycelium.nat import checks as c
from mycelium.nat import negotiation as n
from nat_sim import Nat, World

LOW, HIGH = b"\x01" * 32, b"\xf0" * 32


def test_two_endpoint_independent_nats_get_a_direct_link_on_the_public_mappings() -> None:
    world = World()
    a = world.add(LOW, ("10.0.1.2", 9651), Nat("192.0.2.1"))
    b = world.add(HIGH, ("10.0.2.2", 9651), Nat("192.0.2.2"))
    a.negotiator.traffic(HIGH, 0.0)
    world.pump(a)
    world.run(30.0)
    ((dialler, listener, address, at),) = world.links
    assert (dialler, listener) == (LOW, HIGH)  # the lower key dials
    assert address == ("192.0.2.2", 9651)
    assert at < 0.5  # query, offer, answer, one round of checks
    assert a.negotiator._peers[HIGH].phase is n.Phase.LINKED
    assert b.negotiator._peers[LOW].phase is n.Phase.LINKED
    assert world.datagrams < 40


def test_a_symmetric_nat_fails_quietly_and_backs_off() -> None:
    world = World()
    a = world.add(LOW, ("10.0.1.2", 9651), Nat("192.0.2.1", symmetric=True))
    b = world.add(HIGH, ("10.0.2.2", 9651), Nat("192.0.2.2"))
    a.negotiator.traffic(HIGH, 0.0)
    world.pump(a)
    world.run(n.BACKOFF_BASE - 1)
    assert world.links == [] and a.dials == []
    for host, other in ((a, HIGH), (b, LOW)):
        peer = host.negotiator._peers[other]
        assert peer.phase is n.Phase.IDLE and peer.failures == 1
    # Checks for the whole window, then silence: a bounded number of datagrams.
    sent = world.datagrams
    assert sent <= 2 * (c.CHECK_WINDOW / c.CHECK_INTERVAL + 1)
    for host, other in ((a, HIGH), (b, LOW)):  # traffic meanwhile starts nothing
        host.negotiator.traffic(other, world.now)
        world.pump(host)
    world.run(world.now + 5)
    assert world.datagrams == sent
    # After the backoff (counted from the failure, after the 10 s of checks), one more try,
    # which fails again.
    retry = a.negotiator._peers[HIGH].not_before
    assert retry == pytest.approx(c.CHECK_WINDOW + n.BACKOFF_BASE + 0.2)  # exchange: 0.2 s
    world.run(retry)
    a.negotiator.traffic(HIGH, retry)
    world.pump(a)
    world.run(retry + 60)
    assert world.links == [] and a.negotiator._peers[HIGH].failures == 2


def test_two_nodes_behind_one_nat_meet_on_their_host_candidates() -> None:
    world = World()
    nat = Nat("192.0.2.1")
    world.add(LOW, ("10.0.1.2", 9651), nat)
    b = world.add(HIGH, ("10.0.1.3", 9651), nat)
    b.negotiator.traffic(LOW, 0.0)  # either side may start
    world.pump(b)
    world.run(30.0)
    ((dialler, _, address, _),) = world.links
    assert dialler == LOW and address == ("10.0.1.3", 9651)


def test_a_public_node_and_a_natted_one() -> None:
    world = World()
    world.add(LOW, ("198.51.100.7", 9651), None)
    b = world.add(HIGH, ("10.0.2.2", 9651), Nat("192.0.2.2"))
    b.negotiator.traffic(LOW, 0.0)
    world.pump(b)
    world.run(30.0)
    assert [link[2] for link in world.links] == [("192.0.2.2", 9651)]


def test_both_symmetric_never_punch() -> None:
    world = World()
    a = world.add(LOW, ("10.0.1.2", 9651), Nat("192.0.2.1", symmetric=True))
    world.add(HIGH, ("10.0.2.2", 9651), Nat("192.0.2.2", symmetric=True))
    a.negotiator.traffic(HIGH, 0.0)
    world.pump(a)
    world.run(30.0)
    assert world.links == [] and world.datagrams == 0
    assert a.negotiator._peers[HIGH].not_before > n.BACKOFF_MAX - 1


def test_both_sides_starting_at_once_make_one_link() -> None:
    world = World()
    a = world.add(LOW, ("10.0.1.2", 9651), Nat("192.0.2.1"))
    b = world.add(HIGH, ("10.0.2.2", 9651), Nat("192.0.2.2"))
    for host, other in ((a, HIGH), (b, LOW)):
        host.negotiator.traffic(other, 0.0)
        world.pump(host)
    world.run(30.0)
    assert len(world.links) == 1
