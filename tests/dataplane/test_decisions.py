"""Per-address decisions kept across batches (dataplane/kept.py): a lone
packet takes the short path, and nothing the router or the allow list changes is missed."""

from __future__ import annotations

from dp_fakes import identity, ipv6_packet, make_plane, parse_frame
from mycelium.allow import AllowList
from mycelium.crypto import SharedKey, shared_secret
from mycelium.dataplane.kept import KEEP_SECONDS
from mycelium.identity import Identity
from mycelium.routing.constants import ROUTE_ALMOST_EXPIRED
from mycelium.wire.packet import DataPacket

A, B, C = identity("decide a"), identity("decide b"), identity("decide c")


def _sealed(sender: Identity, receiver: Identity, n: int) -> list[DataPacket]:
    key = SharedKey(shared_secret(sender.secret, receiver.public_key))
    inner = b"\x01\x00\x00\x00" + ipv6_packet(sender.address, receiver.address, hop=9)
    return [DataPacket(sender.address, receiver.address, 10, key.seal(inner)) for _ in range(n)]


def test_lone_packets_to_a_known_destination_ask_the_router_once() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    for i in range(5):
        plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=0.1 * i)
        assert [nb for nb, _ in plane.take_link_batches()] == ["nb"]
    assert router.route_calls == 1
    assert plane.counters.sent == 5
    # Only the first went through the checks and the router: the others were the common case.
    plane.slow = False
    plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=0.5)
    assert plane.slow is False


def test_a_route_change_is_seen_by_the_next_packet() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=0.0)
    plane.take_link_batches()
    router.add(B, "other")  # the selected next hop changed
    plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=0.1)
    assert [nb for nb, _ in plane.take_link_batches()] == ["other"]
    router.remove(B)  # and the route went away: the packet is parked, not sent on the old link
    plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=0.2)
    assert plane.take_link_batches() == []
    assert plane.counters.queued == 1


def test_decisions_outlast_a_ping_interval_and_are_asked_for_again_in_time() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    for second in range(int(KEEP_SECONDS)):  # a ping a second: the router answers once
        plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=float(second))
    assert router.route_calls == 1
    plane.from_tun([ipv6_packet(A.address, B.address, hop=9)], now=KEEP_SECONDS)
    assert router.route_calls == 2
    # The router sees a destination in use at least twice while its route is almost expired,
    # in time to refresh it (routing/router.py, Router.route).
    assert 2 * KEEP_SECONDS <= ROUTE_ALMOST_EXPIRED


def test_lone_packets_from_a_known_source_are_opened_with_the_kept_cipher() -> None:
    plane, router = make_plane(B)
    router.add(A, "na")
    packets = _sealed(A, B, 4)
    for i, p in enumerate(packets):
        plane.from_link([p], now=0.1 * i)
    assert len(plane.take_to_tun()) == 4
    assert router.key_calls == 1
    # A copy of an earlier packet, in a later batch, is still a replay.
    plane.from_link([packets[1]], now=0.5)
    assert plane.take_to_tun() == [] and plane.replay.replayed == 1


def test_a_new_key_owner_or_allow_list_applies_to_the_next_packet() -> None:
    plane, router = make_plane(B)
    router.add(A, "na")
    plane.from_link(_sealed(A, B, 1), now=0.0)
    assert len(plane.take_to_tun()) == 1
    # A's /64 now belongs to another key (C's, under A's subnet): A's packets no longer open.
    router.table[A.subnet] = ("na", C.public_key, True)
    router.version += 1
    plane.from_link(_sealed(A, B, 1), now=0.1)
    assert plane.take_to_tun() == [] and plane.counters.decrypt_failed == 1
    router.add(A, "na")
    plane.from_link(_sealed(A, B, 1), now=0.2)
    assert len(plane.take_to_tun()) == 1
    plane.allow = AllowList([C.subnet], B.subnet)
    plane.from_link(_sealed(A, B, 1), now=0.3)
    assert plane.take_to_tun() == []


def test_a_key_change_in_the_middle_of_a_run_applies_to_the_next_packet() -> None:
    """The table changes during a batch (here: while a route is requested for an unknown
    source); a packet of A's run then answered with an ICMP error makes a nested ``from_link``
    that drops the kept keys, and A's next packet must be opened with A's new key."""
    plane, router = make_plane(B)
    router.add(A, "na")
    plane.from_link(_sealed(A, B, 1), now=0.0)  # A's key is kept
    assert len(plane.take_to_tun()) == 1

    def request_route(address: bytes, now: float) -> None:
        router.table[A.subnet] = ("na", C.public_key, True)  # A's /64 now answers with C's key
        router.version += 1

    router.request_route = request_route  # type: ignore[method-assign]
    unknown = DataPacket(bytes([4, 9]) + bytes(14), B.address, 10, bytes(60))
    first, expiring, last = _sealed(A, B, 3)
    expiring = DataPacket(expiring.src, expiring.dst, 1, expiring.body)
    plane.from_link([unknown, first, expiring, last], now=0.1)
    assert plane.counters.hop_limit_expired == 1
    assert len(plane.take_to_tun()) == 1  # ``first``, opened before the change; not ``last``
    assert plane.counters.decrypt_failed == 1


def test_kept_decisions_are_bounded() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    many = [B.address[:8] + i.to_bytes(8, "big") for i in range(3000)]
    plane.from_tun([ipv6_packet(A.address, dst, hop=9) for dst in many], now=0.0)
    assert plane.counters.sent == 3000
    assert len(plane.kept.paths) == 1024


def test_frames_still_parse_after_the_short_path() -> None:
    plane, router = make_plane(A)
    router.add(B, "nb")
    receiver, back = make_plane(B)
    back.add(A, "na")
    for i in range(3):
        plane.from_tun([ipv6_packet(A.address, B.address, hop=9, payload=bytes([i]) * 8)], 0.0)
        ((_, frames),) = plane.take_link_batches()
        receiver.from_link([parse_frame(f) for f in frames], now=0.0)
    delivered = receiver.take_to_tun()
    assert [p[-1] for p in delivered] == [0, 1, 2]


def _relayed(n: int, dst: bytes = B.address) -> list[DataPacket]:
    """Packets from A to ``dst`` that C only relays (their bodies are opaque to it)."""
    return [DataPacket(A.address, dst, 10, bytes([i]) * 60) for i in range(n)]


def test_relayed_packets_ask_the_router_once_and_see_a_route_change() -> None:
    plane, router = make_plane(C)
    router.add(B, "nb")
    for i in range(4):
        plane.from_link(_relayed(2), now=0.1 * i)
    assert router.route_calls == 1 and plane.counters.forwarded == 8
    ((nb, frames),) = plane.take_link_batches()
    assert nb == "nb" and [parse_frame(f).hop_limit for f in frames] == [9] * 8
    router.add(B, "other")  # the selected next hop changed
    plane.from_link(_relayed(1), now=0.5)
    assert [nb for nb, _ in plane.take_link_batches()] == ["other"]
    router.remove(B)  # gone: parked for the route query, not sent on a kept link
    plane.from_link(_relayed(1), now=0.6)
    assert plane.take_link_batches() == [] and plane.counters.queued == 1
    # Kept relay decisions age like the others, so the router still sees the destination.
    router.add(B, "nb")
    calls = router.route_calls
    plane.from_link(_relayed(1), now=0.7)
    plane.from_link(_relayed(1), now=0.7 + KEEP_SECONDS)
    assert router.route_calls == calls + 2


def test_kept_relay_decisions_are_bounded() -> None:
    plane, router = make_plane(C)
    router.add(B, "nb")
    many = [B.address[:8] + i.to_bytes(8, "big") for i in range(3000)]
    plane.from_link([p for dst in many for p in _relayed(1, dst)], now=0.0)
    assert plane.counters.forwarded == 3000
    assert len(plane.kept.hops) == 1024
