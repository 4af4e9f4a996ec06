"""The negotiation state machine on a virtual clock: queries, offers, glare, backoff, limits."""

from __future__ import annotations

import itertools

import pytest

from mycelium.nat import negotiation as n
from mycelium.nat.candidates import Candidate, CandidateKind, NatType
from mycelium.nat.negotiation import LocalInfo, Negotiator, Phase
from mycelium.nat.protocol import Decline, DeclineReason, Offer

LOW, HIGH = b"\x01" * 32, b"\xf0" * 32
CANDIDATE = Candidate(CandidateKind.REFLEXIVE, "203.0.113.1", 9651)


def local(nat: NatType = NatType.ENDPOINT_INDEPENDENT) -> LocalInfo:
    return LocalInfo((CANDIDATE,), nat)


def negotiator(key: bytes, nat: NatType = NatType.ENDPOINT_INDEPENDENT) -> Negotiator:
    counter = itertools.count(1)
    engine = Negotiator(key, lambda: b"F" * 32, lambda size: next(counter).to_bytes(size, "big"))
    engine.set_local(local(nat))
    return engine


def offer_from(session: bytes = b"s" * 8, nat: NatType = NatType.ENDPOINT_INDEPENDENT) -> Offer:
    return Offer(session, nat, b"G" * 32, b"k" * 16, (CANDIDATE,))


def phase(engine: Negotiator, key: bytes) -> Phase:
    return engine._peers[key].phase


def test_unknown_node_is_queried_three_times_then_left_alone_for_an_hour() -> None:
    a = negotiator(LOW)
    a.traffic(HIGH, 0.0)
    assert a.take_queries() == [HIGH]
    a.traffic(HIGH, 0.1)  # already asking: nothing more
    assert a.take_queries() == []
    for t in (1.0, 2.0):
        assert a.next_deadline() == t
        a.tick(t)
        assert a.take_queries() == [HIGH]
    a.tick(3.0)
    assert a.take_queries() == [] and a.take_messages() == []
    assert phase(a, HIGH) is Phase.IDLE
    a.traffic(HIGH, 3.0 + n.UNSUPPORTED_RECHECK - 1)
    assert a.take_queries() == []
    a.traffic(HIGH, 3.0 + n.UNSUPPORTED_RECHECK)
    assert a.take_queries() == [HIGH]  # asked again after the hour


def test_answered_query_leads_to_an_offer_with_our_candidates() -> None:
    a = negotiator(LOW)
    a.traffic(HIGH, 0.0)
    a.take_queries()
    a.query_answered(HIGH, 0.2)
    ((to, offer),) = a.take_messages()
    assert to == HIGH and isinstance(offer, Offer) and not offer.answer
    assert offer.candidates == (CANDIDATE,) and offer.fingerprint == b"F" * 32
    assert phase(a, HIGH) is Phase.OFFERED
    assert a.next_deadline() == 0.2 + n.ANSWER_TIMEOUT


def test_the_certificate_fingerprint_is_not_needed_before_an_offer() -> None:
    asked: list[int] = []

    def fingerprint() -> bytes:
        asked.append(1)
        return b"F" * 32

    a = Negotiator(LOW, fingerprint)
    a.set_local(local())
    a.traffic(HIGH, 0.0)
    a.take_queries()
    assert asked == []  # gathering and queries need no certificate
    a.query_answered(HIGH, 0.2)
    ((_, offer),) = a.take_messages()
    assert isinstance(offer, Offer) and offer.fingerprint == b"F" * 32 and asked == [1]


def exchange(a: Negotiator, b: Negotiator, now: float = 0.0) -> None:
    """A offers to B (support already known) and B's answer comes back."""
    a.traffic(b.own_key, now)
    a.take_queries()
    a.query_answered(b.own_key, now)  # a no-op once support is known
    ((_, offer),) = a.take_messages()
    b.received(a.own_key, offer, now)
    ((_, answer),) = b.take_messages()
    a.received(b.own_key, answer, now)


def test_offer_and_answer_start_both_punches_with_crossed_secrets() -> None:
    a, b = negotiator(LOW), negotiator(HIGH)
    exchange(a, b)
    (pa,), (pb,) = a.take_punches(), b.take_punches()
    assert pa.session == pb.session
    assert pa.controlling and not pb.controlling  # the lower key dials
    assert pa.remote_secret == pb.local_secret and pb.remote_secret == pa.local_secret
    assert pa.remote_fingerprint == b"F" * 32
    assert phase(a, HIGH) is phase(b, LOW) is Phase.PUNCHING
    assert a.session_of(HIGH) == pa.session


def test_glare_keeps_the_lower_keys_offer() -> None:
    a, b = negotiator(LOW), negotiator(HIGH)
    for engine, other in ((a, HIGH), (b, LOW)):
        engine.traffic(other, 0.0)
        engine.query_answered(other, 0.0)
    ((_, offer_a),) = a.take_messages()
    ((_, offer_b),) = b.take_messages()
    a.received(HIGH, offer_b, 0.1)  # LOW ignores HIGH's offer
    assert a.take_messages() == [] and phase(a, HIGH) is Phase.OFFERED
    b.received(LOW, offer_a, 0.1)  # HIGH drops its own and answers
    ((_, answer),) = b.take_messages()
    assert isinstance(answer, Offer) and answer.answer and answer.session == offer_a.session
    a.received(HIGH, answer, 0.2)
    assert a.take_punches()[0].session == b.take_punches()[0].session


def test_failure_backs_off_exponentially_and_a_stable_link_resets_it() -> None:
    a, b = negotiator(LOW), negotiator(HIGH)
    now = 0.0
    delays = []
    for _ in range(8):
        exchange(a, b, now)
        (punch,) = a.take_punches()
        b.take_punches()
        a.punch_failed(HIGH, punch.session, now)
        retry = a._peers[HIGH].not_before
        a.traffic(HIGH, retry - 0.01)
        assert a.take_messages() == []  # not before the backoff ends
        delays.append(retry - now)
        now = retry
        b.punch_failed(LOW, punch.session, now)
        b._peers[LOW].last_offer_in = -1e9
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    exchange(a, b, now)
    a.link_up(HIGH, now)
    a.link_down(HIGH, now + n.STABLE_LINK)
    assert a._peers[HIGH].not_before == now + n.STABLE_LINK + n.BACKOFF_BASE


def test_a_link_that_dies_young_counts_as_a_failure() -> None:
    a = negotiator(LOW)
    a.link_up(HIGH, 0.0)
    a.link_down(HIGH, 10.0)
    a.link_up(HIGH, 80.0)
    a.link_down(HIGH, 90.0)
    assert a._peers[HIGH].not_before == 90.0 + 2 * n.BACKOFF_BASE


def test_no_answer_is_a_failure() -> None:
    a = negotiator(LOW)
    a.traffic(HIGH, 0.0)
    a.query_answered(HIGH, 0.0)
    a.take_messages()
    a.tick(n.ANSWER_TIMEOUT)
    assert phase(a, HIGH) is Phase.IDLE and a._peers[HIGH].failures == 1


def test_punch_safety_timeout_cancels_the_session() -> None:
    a, b = negotiator(LOW), negotiator(HIGH)
    exchange(a, b)
    (punch,) = a.take_punches()
    a.tick(n.PUNCH_TIMEOUT)
    assert a.take_cancelled() == [punch.session]
    assert phase(a, HIGH) is Phase.IDLE


@pytest.mark.parametrize(
    ("ours", "theirs", "declined"),
    [
        (NatType.SYMMETRIC, NatType.SYMMETRIC, True),
        (NatType.SYMMETRIC, NatType.ENDPOINT_INDEPENDENT, False),
        (NatType.UNKNOWN, NatType.SYMMETRIC, False),
    ],
)
def test_two_symmetric_nats_do_not_try(ours: NatType, theirs: NatType, declined: bool) -> None:
    b = negotiator(HIGH, ours)
    b.received(LOW, offer_from(nat=theirs), 0.0)
    ((_, reply),) = b.take_messages()
    assert isinstance(reply, Decline) is declined
    if declined:
        assert reply.reason is DeclineReason.SYMMETRIC  # type: ignore[union-attr]
        a = negotiator(LOW, theirs)
        a.traffic(HIGH, 0.0)
        a.query_answered(HIGH, 0.0)
        ((_, offer),) = a.take_messages()
        a.received(HIGH, Decline(offer.session, DeclineReason.SYMMETRIC), 0.1)  # type: ignore[union-attr]
        assert a._peers[HIGH].not_before == 0.1 + n.BACKOFF_MAX


def test_offers_are_rate_limited_per_node_and_sessions_are_bounded() -> None:
    b = negotiator(HIGH)
    b.received(LOW, offer_from(b"1" * 8), 0.0)
    b.received(LOW, offer_from(b"2" * 8), 1.0)  # too soon: dropped
    assert len(b.take_messages()) == 1 and b.offers_dropped == 1
    b.received(LOW, offer_from(b"3" * 8), 10.0)  # the other side started over
    assert len(b.take_messages()) == 1
    assert b.take_cancelled() == [b"1" * 8]
    for i in range(n.MAX_SESSIONS + 3):
        b.received(bytes((i + 2,)) * 32, offer_from(), 20.0)
    replies = [m for _, m in b.take_messages()]
    busy = [m for m in replies if isinstance(m, Decline)]
    assert len(replies) - len(busy) == n.MAX_SESSIONS - 1  # one session was already running
    assert all(m.reason is DeclineReason.BUSY for m in busy)


def test_linked_nodes_decline_and_before_gathering_everyone_is_busy() -> None:
    b = negotiator(HIGH)
    b.link_up(LOW, 0.0)
    b.received(LOW, offer_from(), 1.0)
    ((_, reply),) = b.take_messages()
    assert reply == Decline(b"s" * 8, DeclineReason.LINKED)
    fresh = Negotiator(HIGH, lambda: pytest.fail("no offer is made before gathering"))
    fresh.received(LOW, offer_from(), 0.0)
    ((_, reply),) = fresh.take_messages()
    assert reply == Decline(b"s" * 8, DeclineReason.BUSY)
    fresh.traffic(LOW, 0.0)  # nothing to offer yet
    assert fresh.take_queries() == []


def test_stray_answers_and_declines_change_nothing() -> None:
    a = negotiator(LOW)
    a.received(HIGH, Offer(b"x" * 8, NatType.UNKNOWN, bytes(32), bytes(16), (), True), 0.0)
    a.received(HIGH, Decline(b"x" * 8, DeclineReason.BUSY), 0.0)
    assert a.take_punches() == [] and HIGH not in a._peers
    a.received(LOW, offer_from(), 0.0)  # ourselves
    assert a.take_messages() == []


def test_the_table_is_bounded() -> None:
    a = negotiator(LOW)
    for i in range(n.MAX_PEERS + 50):
        key = i.to_bytes(32, "big")
        a._peer(key, float(i))
    assert len(a._peers) == n.MAX_PEERS
    snapshot = a.snapshot(0.0)
    assert len(snapshot) == n.MAX_PEERS and snapshot[0]["state"] == "idle"


def test_links_are_capped_and_an_idle_close_leaves_no_pause() -> None:
    a = negotiator(LOW)
    for i in range(n.MAX_LINKS):
        a.link_up(bytes((i + 100,)) * 32, 0.0)
    a.traffic(HIGH, 1.0)
    assert a.take_queries() == []  # at the cap: nothing starts
    a.received(HIGH, offer_from(), 1.0)
    ((_, reply),) = a.take_messages()
    assert reply == Decline(b"s" * 8, DeclineReason.BUSY)
    first = bytes((100,)) * 32
    a.link_down(first, 2.0, idle=True)
    assert a._peers[first].phase is Phase.IDLE and a._peers[first].not_before == 2.0
    a.traffic(first, 2.0)
    assert a.take_messages()  # support known: an offer at once
