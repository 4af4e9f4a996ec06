"""Per-address packet statistics: what the data plane counts (as the reference's router does) and
the bound that the reference lacks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dp_fakes import identity, ipv6_packet, make_plane, parse_frame, take_frames
from mycelium.dataplane.packet_stats import AddressCount, PacketStats
from mycelium.wire.packet import DataPacket


def test_originated_packets_are_counted_with_their_encrypted_size() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "link-b")
    packets = [ipv6_packet(a.address, b.address, payload=b"p" * n) for n in (10, 200, 30)]
    plane.from_tun(packets, 0.0)
    frames = [parse_frame(f) for _, f in take_frames(plane)]
    assert len(frames) == 3
    total = sum(len(f.body) for f in frames)
    assert plane.packet_stats.by_src == {a.address: [3, total]}
    assert plane.packet_stats.by_dst == {b.address: [3, total]}


def test_interleaved_destinations_from_the_tun_are_kept_apart() -> None:
    a, b, c = identity("a"), identity("b"), identity("c")
    plane, router = make_plane(a)
    router.add(b, "link-b")
    router.add(c, "link-c")
    order = [(b, 10), (b, 20), (c, 40), (b, 80), (c, 160)]
    plane.from_tun([ipv6_packet(a.address, d.address, payload=b"p" * n) for d, n in order], 0.0)
    sizes: dict[bytes, list[int]] = {}
    for _, frame in take_frames(plane):
        f = parse_frame(frame)
        tally = sizes.setdefault(f.dst, [0, 0])
        tally[0] += 1
        tally[1] += len(f.body)
    assert [sizes[b.address][0], sizes[c.address][0]] == [3, 2]
    assert plane.packet_stats.by_dst == sizes
    assert plane.packet_stats.by_src == {a.address: [5, sum(t[1] for t in sizes.values())]}


def test_forwarded_and_delivered_packets_are_counted_even_when_dropped() -> None:
    a, b, c = identity("a"), identity("b"), identity("c")
    plane, router = make_plane(b)
    router.add(c, "link-c")
    router.add(a, "link-a")
    plane.from_link(
        [
            DataPacket(a.address, c.address, 64, b"x" * 80),  # forwarded
            DataPacket(a.address, c.address, 1, b"y" * 40),  # hop limit expired
            DataPacket(a.address, b.address, 64, b"z" * 60),  # for us (fails to open)
        ],
        0.0,
    )
    stats = plane.packet_stats
    assert stats.by_src[a.address] == [3, 180]
    assert stats.by_dst[c.address] == [2, 120]
    assert stats.by_dst[b.address] == [1, 60]
    # packets_routed{verdict}: local counts before decryption, as the reference's router step.
    c = plane.counters
    # Forwarded: the first packet and our Time Exceeded for the second, back to a.
    assert (c.routed_local, c.forwarded, c.hop_limit_expired, c.delivered) == (1, 2, 1, 0)


def test_interleaved_flows_in_one_batch_are_kept_apart() -> None:
    a, b, c = identity("a"), identity("b"), identity("c")
    plane, router = make_plane(b)
    router.add(c, "link-c")
    sizes = [(a, c, 10), (a, c, 20), (c, a, 40), (a, c, 80), (a, b, 160), (a, c, 320)]
    plane.from_link([DataPacket(s.address, d.address, 64, b"x" * n) for s, d, n in sizes], 0.0)
    stats = plane.packet_stats
    assert stats.by_src == {a.address: [5, 590], c.address: [1, 40]}
    assert stats.by_dst == {c.address: [4, 430], a.address: [1, 40], b.address: [1, 160]}


def test_messages_are_counted() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "link-b")
    plane.send_message(b.address, b"hello", 0.0)
    [(_, frame)] = take_frames(plane)
    assert plane.packet_stats.by_dst == {b.address: [1, len(parse_frame(frame).body)]}


def test_full_maps_forget_the_quietest_half() -> None:
    stats = PacketStats(limit=10)
    heavy = bytes([4]) + bytes(15)
    for _ in range(5):
        stats.record(heavy, heavy, 1, 1)
    for i in range(1, 30):
        stats.record(bytes([5, i]) + bytes(14), heavy, 1, 1)
    assert len(stats.by_src) <= 10
    assert stats.by_src[heavy] == [5, 5]  # the heavy talker survived every eviction
    assert bytes([5, 29]) + bytes(14) in stats.by_src  # the newest is always kept
    assert stats.evicted == 30 - len(stats.by_src)
    assert stats.by_dst == {heavy: [34, 34]}


def test_a_run_is_recorded_at_once_and_snapshots_keep_first_seen_order() -> None:
    stats = PacketStats()
    x, y = b"x" * 16, b"y" * 16
    stats.record(x, y, 3, 60)
    stats.record(y, x, 1, 5)
    stats.record(x, y, 2, 7)
    assert stats.by_src == {x: [5, 67], y: [1, 5]}
    assert stats.by_dst == {y: [5, 67], x: [1, 5]}
    by_source, by_destination = stats.snapshot()
    assert by_source == [AddressCount(x, 5, 67), AddressCount(y, 1, 5)]
    assert by_destination == [AddressCount(y, 5, 67), AddressCount(x, 1, 5)]


@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(1, 5), st.booleans()),
        max_size=300,
    )
)
def test_folding_later_counts_what_folding_at_once_counts(
    runs: list[tuple[int, int, int, bool]],
) -> None:
    """Runs wait to be folded (off a lone packet's path); whenever the maps are read, they are
    what counting each run at once gives, evictions included (a limit of 8 for 13 addresses)."""
    later, at_once = PacketStats(limit=8), PacketStats(limit=8)
    for src, dst, packets, read in runs:
        a, b = bytes([4, src]) + bytes(14), bytes([4, dst]) + bytes(14)
        later.record(a, b, packets, packets * 100)
        at_once.record(a, b, packets, packets * 100)
        at_once.snapshot()  # reading folds what waits: this one counts each run at once
        if read:
            assert later.snapshot() == at_once.snapshot()
            assert later.evicted == at_once.evicted
    assert later.by_src == at_once.by_src and later.by_dst == at_once.by_dst
    assert later.evicted == at_once.evicted
