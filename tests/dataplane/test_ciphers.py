"""Kept ciphers (dataplane/ciphers.py): counted nonces that any receiver opens, and an opener
that reuses its cipher only where the nonces allow it."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dp_fakes import identity, ipv6_packet, make_plane, parse_frame
from mycelium.crypto import CryptoError, SharedKey, shared_secret
from mycelium.dataplane import ciphers
from mycelium.dataplane.ciphers import Opener
from mycelium.dataplane.kept import KEEP_MAX
from mycelium.qh3_native import AuthenticationFailed
from mycelium.wire.packet import DataPacket
from mycelium.wire.stream import StreamDecoder

A, B = identity("ciphers a"), identity("ciphers b")
KEY = bytes(range(32))


def _frames_to_b(plane: object, batches: int, per_batch: int) -> list[bytes]:
    bodies = []
    for i in range(batches):
        packets = [
            ipv6_packet(A.address, B.address, hop=9, payload=bytes([i, j]))
            for j in range(per_batch)
        ]
        plane.from_tun(packets, now=0.01 * i)  # type: ignore[attr-defined]
        for _, frames in plane.take_link_batches():  # type: ignore[attr-defined]
            for packet in StreamDecoder().feed(b"".join(frames)):
                bodies.append(packet.body)
    return bodies


def test_kept_destination_nonces_count_up_from_a_random_iv_and_open_anywhere() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    bodies = _frames_to_b(plane, batches=3, per_batch=4)
    assert len(bodies) == 12
    nonces = [int.from_bytes(body[-12:], "big") for body in bodies]
    assert len(set(nonces)) == 12
    # The first is sealed by the cipher its destination then keeps: its IV XOR 0, 1, 2, ...
    base = nonces[0]
    assert [n ^ base for n in nonces] == list(range(12))
    # What a Rust node does with each: a cipher per body, the body's nonce as its IV.
    rust_view = SharedKey(shared_secret(B.secret, A.public_key))
    opened = [rust_view.open(body) for body in bodies]
    assert [p[44:] for p in opened] == [bytes([i, j]) for i in range(3) for j in range(4)]


def test_a_destinations_sealer_outlives_kept_runs_and_keeps_counting() -> None:
    draws: list[bytes] = []

    def random_bytes(n: int) -> bytes:
        draws.append(os.urandom(n))
        return draws[-1]

    plane, router = make_plane(A, random_bytes=random_bytes)
    router.add(B, "nb")
    first = _frames_to_b(plane, batches=1, per_batch=3)
    router.add(B, "nb2")  # the route table changed: kept decisions are dropped, not the sealer
    second = _frames_to_b(plane, batches=1, per_batch=3)
    plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=60.0)  # and after they aged
    third = [
        p.body for _, fs in plane.take_link_batches() for p in StreamDecoder().feed(b"".join(fs))
    ]
    # Random bytes are taken 12 at a time: B's sealer took the first 12 as its IV, once, and
    # its nonces count up from it across the three runs.
    (drawn,) = draws
    iv = int.from_bytes(drawn[:12], "big")
    nonces = [int.from_bytes(body[-12:], "big") for body in first + second + third]
    assert [n ^ iv for n in nonces] == list(range(7))
    assert plane.kept.sealers == {B.public_key: plane.kept.paths[B.address][1]}
    # Another node gets a sealer of its own, with the next 12 random bytes.
    C = identity("ciphers c")
    router.add(C, "nc")
    plane.from_tun([ipv6_packet(A.address, C.address, hop=9)], now=60.0)
    (frame,) = [f for _, fs in plane.take_link_batches() for f in fs]
    assert frame[-12:] == drawn[12:24]


def _count_ciphers(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The IV of every cipher ``dataplane/ciphers.py`` makes from now on, in order."""
    made: list[bytes] = []
    real = ciphers.AeadAes256Gcm

    def counting(key: bytes, iv: bytes) -> object:
        made.append(iv)
        return real(key, iv)

    monkeypatch.setattr(ciphers, "AeadAes256Gcm", counting)
    return made


def test_a_sources_opener_outlives_kept_runs_and_a_forgery_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plane, router = make_plane(B)
    router.add(A, "na")
    sender, back = make_plane(A)
    back.add(B, "nb")
    packets = []
    for i in range(3):
        sender.from_tun([ipv6_packet(A.address, B.address, hop=9, payload=bytes([i]))], now=0.0)
        packets += [parse_frame(f) for _, fs in sender.take_link_batches() for f in fs]
    made = _count_ciphers(monkeypatch)
    # A forgery from A's address, with a nonce of its own choosing, opens nothing and is not kept.
    plane.from_link([DataPacket(A.address, B.address, 9, os.urandom(60))], now=0.0)
    assert plane.counters.decrypt_failed == 1 and plane.kept.openers == {}
    made.clear()
    plane.from_link([packets[0]], now=0.0)
    router.add(A, "na2")  # kept decisions dropped
    plane.from_link([packets[1]], now=0.1)
    plane.from_link([packets[2]], now=60.0)  # and aged
    assert plane.counters.delivered == 3
    assert made == [packets[0].nonce]  # one cipher for the three runs
    assert list(plane.kept.openers) == [A.public_key]


def test_kept_ciphers_are_bounded_and_the_oldest_go_first() -> None:
    plane, router = make_plane(A)
    nodes = [identity(f"ciphers many {i}") for i in range(KEEP_MAX + 50)]
    for who in nodes:
        router.add(who, "nb")
    plane.from_tun([ipv6_packet(A.address, who.address, hop=9) for who in nodes], now=0.0)
    assert plane.counters.sent == len(nodes)
    assert list(plane.kept.sealers) == [who.public_key for who in nodes[50:]]
    receiver, back = make_plane(B)
    for who in nodes:
        back.add(who, "nb")
    inner = b"\x01\x00\x00\x00" + ipv6_packet(A.address, B.address, hop=9)
    receiver.from_link(
        [
            DataPacket(
                who.address,
                B.address,
                9,
                SharedKey(shared_secret(who.secret, B.public_key)).seal(inner),
            )
            for who in nodes
        ],
        now=0.0,
    )
    assert receiver.counters.delivered == len(nodes)
    assert list(receiver.kept.openers) == [who.public_key for who in nodes[50:]]


def _seal(key: bytes, nonce: bytes, plain: bytes) -> bytes:
    """Ciphertext and tag (the body without its nonce)."""
    return SharedKey(key).seal(plain, nonce)[:-12]


def test_same_prefix_nonces_reuse_the_cipher_and_others_replace_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _count_ciphers(monkeypatch)
    first = bytes(12)
    opener = Opener(KEY, first)
    # Nonces that differ in their last 8 bytes only: one cipher for all.
    for i in range(1, 6):
        nonce = bytes(4) + (i * 0x0101010101).to_bytes(8, "big")
        assert opener.open(_seal(KEY, nonce, b"p%d" % i), nonce) == b"p%d" % i
    assert made == [first]
    # Another prefix (a Rust sender's random nonce): a new cipher, kept for what follows.
    other = b"\xff" * 12
    assert opener.open(_seal(KEY, other, b"x"), other) == b"x"
    following = b"\xff" * 4 + bytes(8)
    assert opener.open(_seal(KEY, following, b"y"), following) == b"y"
    assert made == [first, other]


def test_a_forgery_with_a_new_prefix_fails_and_leaves_the_cipher() -> None:
    opener = Opener(KEY, bytes(12))
    forged = b"\x07" * 12
    with pytest.raises(AuthenticationFailed):
        opener.open(os.urandom(40), forged)
    assert opener._base == 0
    nonce = bytes(11) + b"\x09"
    assert opener.open(_seal(KEY, nonce, b"real"), nonce) == b"real"


#: Nonces sharing one of two prefixes (counted nonces of two sender runs) or fully random.
NONCES = st.one_of(
    st.binary(min_size=12, max_size=12),
    st.builds(
        bytes.__add__,
        st.sampled_from([bytes(4), b"\x01\x02\x03\x04"]),
        st.binary(min_size=8, max_size=8),
    ),
)


@given(st.lists(st.tuples(NONCES, st.booleans(), st.binary(min_size=4, max_size=64)), max_size=30))
def test_an_opener_answers_what_a_cipher_per_body_answers(
    bodies: list[tuple[bytes, bool, bytes]],
) -> None:
    """Whatever the nonces (shared prefixes, random, repeated) and with forgeries mixed in."""
    opener = Opener(KEY, bytes(12))
    for nonce, genuine, plain in bodies:
        sealed = _seal(KEY, nonce, plain) if genuine else _seal(bytes(32), nonce, plain)
        try:
            expected: bytes | None = SharedKey(KEY).open(sealed + nonce)
        except CryptoError:
            expected = None
        try:
            got: bytes | None = opener.open(sealed, nonce)
        except AuthenticationFailed:
            got = None
        assert got == expected
