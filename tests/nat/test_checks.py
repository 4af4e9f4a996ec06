"""Connectivity checks on their own: who is answered, what is believed, what is bounded."""

from __future__ import annotations

import itertools

from mycelium.nat import checks as c
from mycelium.nat import stun
from mycelium.nat.candidates import Candidate, CandidateKind
from mycelium.nat.checks import Checks
from mycelium.nat.negotiation import Punch

PEER = ("192.0.2.2", 9651)
MINE, THEIRS = b"m" * 16, b"t" * 16


def punch(controlling: bool) -> Punch:
    return Punch(
        b"P" * 32,
        b"S" * 8,
        controlling,
        MINE,
        THEIRS,
        b"F" * 32,
        (Candidate(CandidateKind.REFLEXIVE, *PEER),),
    )


def checks() -> Checks:
    counter = itertools.count(1)
    return Checks(lambda size: next(counter).to_bytes(size, "big"))


def request(key: bytes, username: bytes = b"5353535353535353") -> stun.Decoded:
    raw = stun.encode(stun.binding_request(b"r" * 12, username), integrity_key=key)
    return stun.decode(raw)


def test_checks_go_round_robin_every_50_ms_signed_with_the_peers_secret() -> None:
    engine = checks()
    engine.start(punch(True), 0.0)
    engine.tick(0.0)
    ((data, address),) = engine.take_datagrams()
    assert address == PEER
    decoded = stun.decode(data)
    assert decoded.message.get(stun.ATTR_USERNAME) == (b"S" * 8).hex().encode()
    assert stun.check_integrity(decoded, THEIRS) and not stun.check_integrity(decoded, MINE)
    assert engine.next_deadline() == c.CHECK_INTERVAL


def test_a_signed_answer_from_the_checked_address_makes_the_dialler_dial() -> None:
    engine = checks()
    engine.start(punch(True), 0.0)
    engine.tick(0.0)
    ((data, _),) = engine.take_datagrams()
    txid = stun.decode(data).message.transaction_id
    answer = stun.encode(stun.binding_success(txid, "203.0.113.9", 9651), integrity_key=THEIRS)
    # From elsewhere, or unsigned: refused.
    assert engine.response(stun.decode(answer), ("192.0.2.66", 9651), 0.02)
    unsigned = stun.encode(stun.binding_success(txid, "203.0.113.9", 9651))
    assert engine.response(stun.decode(unsigned), PEER, 0.02)
    assert engine.take_dials() == [] and engine.counters.responses_refused == 2
    assert engine.response(stun.decode(answer), PEER, 0.03)
    (dial,) = engine.take_dials()
    assert (dial.address, dial.fingerprint, dial.secret) == (PEER, b"F" * 32, THEIRS)
    assert abs(dial.rtt - 0.03) < 1e-9  # type: ignore[operator]
    engine.tick(1.0)  # dialling: no more checks, no failure either
    assert engine.take_datagrams() == [] and engine.take_failures() == []
    assert engine.next_deadline() == float("inf")


def test_requests_are_answered_only_when_signed_with_our_secret() -> None:
    engine = checks()
    engine.start(punch(False), 0.0)
    source = ("198.51.100.3", 4000)
    assert not engine.request(request(MINE, b"unknown-session"), source, 0.0)
    assert engine.request(request(THEIRS), source, 0.0)  # signed with the wrong secret
    assert engine.take_datagrams() == [] and engine.counters.requests_refused == 1
    assert engine.request(request(MINE), source, 0.0)
    ((data, address),) = engine.take_datagrams()
    assert address == source
    answer = stun.decode(data)
    assert stun.check_integrity(answer, MINE)
    assert stun.mapped_address(answer.message) == source
    # The new address is learned: the next check goes there, and a link from it is expected.
    engine.tick(0.0)
    assert [a for _, a in engine.take_datagrams()] == [source]
    assert engine.expecting(source) is not None
    assert engine.expecting(("::ffff:192.0.2.2", 9651)) is not None  # a candidate, mapped form
    assert engine.expecting(("192.0.2.99", 1)) is None


def test_learned_addresses_are_bounded() -> None:
    engine = checks()
    engine.start(punch(False), 0.0)
    for port in range(1, 100):
        engine.request(request(MINE), ("198.51.100.3", port), 0.0)
    session = engine._sessions[b"S" * 8]
    assert len(session.addresses) + len(session.learned) == c.MAX_ADDRESSES


def test_the_listening_side_waits_longer_then_fails() -> None:
    engine = checks()
    engine.start(punch(False), 0.0)
    engine.tick(c.CHECK_WINDOW)
    assert engine.take_failures() == []
    engine.tick(c.CHECK_WINDOW + c.LISTEN_GRACE)
    assert engine.take_failures() == [(b"P" * 32, b"S" * 8)]
    assert engine.expecting(PEER) is None


def test_open_transactions_are_bounded() -> None:
    engine = checks()
    engine.start(punch(True), 0.0)
    t = 0.0
    while t < c.CHECK_WINDOW:
        engine.tick(t)
        t += c.CHECK_INTERVAL
    assert len(engine._sessions[b"S" * 8].open) == c.MAX_OPEN
