"""Random input never raises, and the wire never sees an inner packet above 1400 bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dp_fakes import identity, make_plane, parse_frame, take_frames
from mycelium.crypto import SharedKey, shared_secret
from mycelium.wire.packet import DataPacket

A, B, C = identity("fuzz a"), identity("fuzz b"), identity("fuzz c")
KEY_AB = SharedKey(shared_secret(A.secret, B.public_key))

addresses = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.sampled_from([A.address, B.address, C.address, A.address[:8] + bytes(8)]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=1600), max_size=8), st.booleans())
def test_random_bytes_into_from_tun_never_raise(packets: list[bytes], with_routes: bool) -> None:
    plane, router = make_plane(A)
    if with_routes:
        router.add(B, "nb")
        router.add(C, "nc", selected=False)
    plane.from_tun(packets, now=0.0)
    plane.tick(20.0)
    for _, frame in take_frames(plane):
        p = parse_frame(frame)
        assert len(p.body) - 32 <= 1400
    assert all(len(p) <= 1280 for p in plane.take_to_tun())


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=40, max_size=1600), addresses, st.integers(0, 255))
def test_ipv6_shaped_tun_packets_never_raise(body: bytes, dst: bytes, hop: int) -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    packet = b"\x60" + body[1:7] + bytes((hop,)) + A.address + dst + body[40:]
    plane.from_tun([packet], now=0.0)
    plane.tick(20.0)
    for _, frame in take_frames(plane):
        assert len(parse_frame(frame).body) - 32 <= 1400


payload_bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda kind, rest: KEY_AB.seal(bytes((1, kind, 0, 0)) + rest),
        st.integers(0, 3),
        st.binary(max_size=1400),
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.builds(DataPacket, addresses, addresses, st.integers(0, 255), payload_bodies),
        max_size=6,
    ),
    st.booleans(),
)
def test_random_packets_into_from_link_never_raise(packets: list[DataPacket], routes: bool) -> None:
    for who in (B, C):
        plane, router = make_plane(who)
        if routes:
            router.add(A, "na")
            router.add(B if who is C else C, "nx", selected=False)
        plane.from_link(packets, now=0.0)
        plane.route_changes([A.subnet, B.subnet, C.subnet], now=1.0)
        plane.tick(40.0)
        plane.take_to_tun()
        plane.take_messages()
        for _, frame in take_frames(plane):
            parse_frame(frame)
