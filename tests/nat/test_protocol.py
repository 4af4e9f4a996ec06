"""The reserved topic's payloads: layout, round trips, and refusal of anything malformed."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.nat.candidates import Candidate, CandidateKind, NatType, normal_host
from mycelium.nat.protocol import (
    MAX_CANDIDATES,
    Decline,
    DeclineReason,
    Offer,
    ProtocolError,
    decode,
)

hosts = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(0, 2**128 - 1).map(lambda n: normal_host(str(ipaddress.IPv6Address(n)))),
)
kinds = st.sampled_from(list(CandidateKind))
candidates = st.builds(Candidate, kinds, hosts, st.integers(1, 65535))
offers = st.builds(
    Offer,
    st.binary(min_size=8, max_size=8),
    st.sampled_from(list(NatType)),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=16, max_size=16),
    st.lists(candidates, max_size=MAX_CANDIDATES).map(tuple),
    st.booleans(),
)


@given(offers)
def test_offer_round_trip(offer: Offer) -> None:
    assert decode(offer.encode()) == offer


@given(st.binary(min_size=8, max_size=8), st.sampled_from(list(DeclineReason)))
def test_decline_round_trip(session: bytes, reason: DeclineReason) -> None:
    assert decode(Decline(session, reason).encode()) == Decline(session, reason)


def test_offer_layout() -> None:
    offer = Offer(
        b"S" * 8,
        NatType.ENDPOINT_INDEPENDENT,
        b"F" * 32,
        b"K" * 16,
        (Candidate(CandidateKind.REFLEXIVE, "198.51.100.7", 9651),),
    )
    raw = offer.encode()
    assert raw[:2] == b"\x01\x01"
    assert raw[2:10] == b"S" * 8 and raw[10] == 1
    assert raw[11:43] == b"F" * 32 and raw[43:59] == b"K" * 16 and raw[59] == 1
    assert raw[60:] == b"\x01\x04" + bytes((198, 51, 100, 7)) + (9651).to_bytes(2, "big")


@given(offers, st.integers(0, 200))
def test_every_truncation_is_refused(offer: Offer, cut: int) -> None:
    raw = offer.encode()
    with pytest.raises(ProtocolError):
        decode(raw[: cut % len(raw)])


@given(offers, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(offer: Offer, extra: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(offer.encode() + extra)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data)


def test_too_many_candidates_and_port_zero_are_refused() -> None:
    one = Candidate(CandidateKind.HOST, "10.0.0.1", 1)
    base = Offer(bytes(8), NatType.UNKNOWN, bytes(32), bytes(16), (one,))
    raw = bytearray(base.encode())
    raw[59] = MAX_CANDIDATES + 1
    with pytest.raises(ProtocolError):
        decode(bytes(raw))
    raw = bytearray(base.encode())
    raw[-2:] = b"\x00\x00"
    with pytest.raises(ProtocolError):
        decode(bytes(raw))
    with pytest.raises(ValueError):
        Offer(bytes(8), NatType.UNKNOWN, bytes(32), bytes(16), (one,) * 9).encode()


def test_other_versions_kinds_and_reasons_are_refused() -> None:
    decline = Decline(bytes(8), DeclineReason.BUSY).encode()
    for raw in (b"\x02" + decline[1:], decline[:1] + b"\x09" + decline[2:], decline[:-1] + b"\x63"):
        with pytest.raises(ProtocolError):
            decode(raw)


def test_an_unknown_nat_type_reads_as_unknown() -> None:
    raw = bytearray(Offer(bytes(8), NatType.SYMMETRIC, bytes(32), bytes(16), ()).encode())
    raw[10] = 200
    assert decode(bytes(raw)).nat_type is NatType.UNKNOWN  # type: ignore[union-attr]


def test_ipv4_mapped_candidates_arrive_as_ipv4() -> None:
    raw = bytearray(Offer(bytes(8), NatType.UNKNOWN, bytes(32), bytes(16), ()).encode())
    raw[59] = 1
    raw += b"\x00\x10" + ipaddress.IPv6Address("::ffff:10.1.2.3").packed + b"\x25\xb3"
    (candidate,) = decode(bytes(raw)).candidates  # type: ignore[union-attr]
    assert candidate == Candidate(CandidateKind.HOST, "10.1.2.3", 9651)
