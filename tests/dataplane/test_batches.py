"""Batches through the per-batch route/key caches behave exactly like single packets."""

from __future__ import annotations

from dp_fakes import identity, ipv6_packet, make_plane, parse_frame
from mycelium.crypto import SharedKey, shared_secret
from mycelium.wire.packet import DataPacket

A, B, C = identity("batch a"), identity("batch b"), identity("batch c")


def test_tun_batch_to_two_destinations_keeps_order_per_link_and_decrypts() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    router.add(C, "nc")
    packets = [
        ipv6_packet(A.address, (B if i % 3 else C).address, hop=9, payload=bytes([i]) * 20)
        for i in range(30)
    ]
    plane.from_tun(packets, now=0.0)
    batches = dict(plane.take_link_batches())
    assert len(batches["nb"]) == 20 and len(batches["nc"]) == 10
    assert plane.counters.sent == 30
    receiver, back = make_plane(B)
    back.add(A, "na")
    receiver.from_link([parse_frame(f) for f in batches["nb"]], now=0.0)
    delivered = receiver.take_to_tun()
    expected = [p[:7] + bytes([7]) + p[8:] for i, p in enumerate(packets) if i % 3]
    assert delivered == expected  # hop limit 9 -> 8 at A -> 7 at B, order kept
    assert receiver.counters.delivered == 20


def test_tun_batch_with_an_expiring_hop_limit_in_the_middle() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    ok = ipv6_packet(A.address, B.address, hop=5)
    plane.from_tun([ok, ipv6_packet(A.address, B.address, hop=1), ok], now=0.0)
    assert [len(frames) for _, frames in plane.take_link_batches()] == [2]
    assert plane.counters.tun_hop_limit == 1 and len(plane.take_to_tun()) == 1


def test_every_packet_of_a_run_to_one_destination_is_checked() -> None:
    """Packets with the addresses of the one before share its path, not its checks."""
    plane, router = make_plane(A)
    router.add(B, "nb")
    ok = ipv6_packet(A.address, B.address)
    too_large = ipv6_packet(A.address, B.address, payload=bytes(1361))  # 1401 bytes
    not_ipv6 = b"\x40" + ok[1:]
    plane.from_tun([ok, too_large, ok, not_ipv6, ok], now=0.0)
    assert [len(frames) for _, frames in plane.take_link_batches()] == [3]
    c = plane.counters
    assert (c.sent, c.tun_too_large, c.tun_not_ipv6) == (3, 1, 1)


def test_link_batch_with_forged_and_empty_payloads_counts_them_and_goes_on() -> None:
    plane, router = make_plane(B)
    router.add(A, "na")
    key = SharedKey(shared_secret(A.secret, B.public_key))
    inner = b"\x01\x00\x00\x00" + ipv6_packet(A.address, B.address, hop=4)
    good, again = key.seal(inner), key.seal(inner)  # two packets (a copy would be a replay)
    batch = [
        DataPacket(A.address, B.address, 10, good),
        DataPacket(A.address, B.address, 10, key.seal(b"")),  # shorter than a user header
        DataPacket(A.address, B.address, 10, good[:-1] + bytes([good[-1] ^ 1])),
        DataPacket(A.address, B.address, 10, key.seal(b"\x01\x00\x00\x00")),  # no IPv6
        DataPacket(A.address, B.address, 10, key.seal(b"\x09" + bytes(60))),  # bad version
        DataPacket(A.address, B.address, 10, again),
    ]
    plane.from_link(batch, now=0.0)
    assert len(plane.take_to_tun()) == 2
    assert plane.counters.delivered == 2
    assert plane.counters.decrypt_failed == 2
    assert plane.counters.bad_payload == 2
