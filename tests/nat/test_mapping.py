"""STUN rounds on a virtual clock: retransmission, give-up, classification, refresh."""

from __future__ import annotations

import itertools

from mycelium.nat import stun
from mycelium.nat.candidates import NatType
from mycelium.nat.mapping import (
    REFRESH_INTERVAL,
    RETRY_INTERVAL,
    MappingProbe,
    classify,
)

S1, S2 = ("192.0.2.10", 3478), ("192.0.2.20", 3479)


def counter_bytes():  # type: ignore[no-untyped-def]
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


def answer(request: bytes, mapped: tuple[str, int]) -> stun.Decoded:
    txid = stun.decode(request).message.transaction_id
    return stun.decode(stun.encode(stun.binding_success(txid, *mapped)))


def test_two_servers_same_mapping_is_endpoint_independent() -> None:
    probe = MappingProbe(counter_bytes())
    probe.start_round([S1, S2], 0.0)
    sent = dict((addr, data) for data, addr in probe.take_datagrams())
    assert set(sent) == {S1, S2}
    assert probe.response(answer(sent[S1], ("203.0.113.5", 9651)), S1, 0.01)
    assert probe.take_results() == []  # one server still to answer
    assert probe.response(answer(sent[S2], ("203.0.113.5", 9651)), S2, 0.02)
    (result,) = probe.take_results()
    assert result.nat_type is NatType.ENDPOINT_INDEPENDENT
    assert result.public == (("203.0.113.5", 9651),)
    assert probe.next_deadline() == 0.02 + REFRESH_INTERVAL


def test_different_ports_mean_symmetric() -> None:
    probe = MappingProbe(counter_bytes())
    probe.start_round([S1, S2], 0.0)
    sent = dict((addr, data) for data, addr in probe.take_datagrams())
    probe.response(answer(sent[S1], ("203.0.113.5", 40001)), S1, 0.1)
    probe.response(answer(sent[S2], ("203.0.113.5", 40002)), S2, 0.1)
    (result,) = probe.take_results()
    assert result.nat_type is NatType.SYMMETRIC
    assert len(result.public) == 2


def test_retransmits_then_gives_up_and_retries_sooner() -> None:
    probe = MappingProbe(counter_bytes())
    probe.start_round([S1], 0.0)
    times = [0.0]
    assert len(probe.take_datagrams()) == 1
    now = 0.0
    while probe.running:
        now = probe.next_deadline()
        probe.tick(now)
        if probe.take_datagrams():
            times.append(now)
    assert times == [0.0, 0.5, 1.5, 3.5]  # RFC 8489's doubling, four transmissions
    assert now == 7.5
    (result,) = probe.take_results()
    assert result.nat_type is NatType.UNKNOWN and result.public == ()
    assert result.answers == {S1: None}
    assert probe.next_deadline() == 7.5 + RETRY_INTERVAL


def test_an_answer_from_elsewhere_or_unknown_is_not_taken() -> None:
    probe = MappingProbe(counter_bytes())
    probe.start_round([S1], 0.0)
    ((request, _),) = probe.take_datagrams()
    # The right transaction ID from another address: ours, but not believed.
    assert probe.response(answer(request, ("198.51.100.1", 1)), ("192.0.2.99", 3478), 0.1)
    assert probe.unmatched == 1 and probe.running
    # An unknown transaction: not ours at all.
    other = stun.decode(stun.encode(stun.binding_success(b"x" * 12, "198.51.100.1", 1)))
    assert not probe.response(other, S1, 0.1)
    # An error response ends the transaction without a mapping.
    txid = stun.decode(request).message.transaction_id
    error = stun.StunMessage(stun.BINDING, stun.StunClass.ERROR, txid)
    assert probe.response(stun.decode(stun.encode(error)), S1, 0.2)
    (result,) = probe.take_results()
    assert result.answers == {S1: None}


def test_ipv4_mapped_server_addresses_are_one_server() -> None:
    probe = MappingProbe(counter_bytes())
    probe.start_round([S1, ("::ffff:192.0.2.10", 3478)], 0.0)
    assert len(probe.take_datagrams()) == 1


def test_no_servers_finishes_at_once() -> None:
    probe = MappingProbe()
    probe.start_round([], 5.0)
    (result,) = probe.take_results()
    assert result.nat_type is NatType.UNKNOWN
    assert probe.next_deadline() == 5.0 + RETRY_INTERVAL


def test_classify() -> None:
    a, b = ("203.0.113.5", 1000), ("203.0.113.5", 1001)
    v6 = ("2001:db8::5", 1000)
    assert classify([a]) is NatType.UNKNOWN
    assert classify([a, None]) is NatType.UNKNOWN
    assert classify([a, a]) is NatType.ENDPOINT_INDEPENDENT
    assert classify([a, b]) is NatType.SYMMETRIC
    assert classify([a, v6]) is NatType.UNKNOWN  # one answer per family says nothing
    assert classify([v6, v6, a, b]) is NatType.SYMMETRIC
    assert classify([a, a], local=[a]) is NatType.OPEN
