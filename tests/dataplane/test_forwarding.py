"""Transit and destination: hop-limit step, forwarding, out-of-band ICMP (docs/wire.md §5)."""

from __future__ import annotations

from types import SimpleNamespace

from dp_fakes import icmpv6_checksum_ok, identity, ipv6_packet, make_plane, parse_frame, take_frames
from mycelium.api.metrics import NodeCollector
from mycelium.crypto import SharedKey, shared_secret
from mycelium.dataplane import DataPlane
from mycelium.wire.packet import DataPacket

A, B, C = identity("node a"), identity("node b"), identity("node c")


def sealed(src_id, dst_id, hop: int, inner_hop: int = 64, payload: bytes = b"p" * 30) -> DataPacket:
    """A data packet from src_id to dst_id as the origin would send it."""
    inner = ipv6_packet(src_id.address, dst_id.address, hop=inner_hop, payload=payload)
    key = SharedKey(shared_secret(src_id.secret, dst_id.public_key))
    return DataPacket(src_id.address, dst_id.address, hop, key.seal(b"\x01\x00\x00\x00" + inner))


def frames_of(plane: DataPlane) -> list[tuple[object, DataPacket]]:
    return [(n, parse_frame(f)) for n, f in take_frames(plane)]


def test_transit_packet_is_forwarded_with_hop_limit_decremented_and_body_untouched() -> None:
    plane, router = make_plane(C)
    router.add(B, "nb")
    p = sealed(A, B, hop=10)
    plane.from_link([p], now=0.0)
    [(n, out)] = frames_of(plane)
    assert n == "nb"
    assert (out.src, out.dst, out.hop_limit, out.body) == (p.src, p.dst, 9, p.body)
    assert plane.counters.forwarded == 1


def test_transit_hop_limit_2_forwards_with_1_and_1_expires() -> None:
    plane, router = make_plane(C)
    router.add(B, "nb")
    router.add(A, "na")
    plane.from_link([sealed(A, B, hop=2)], now=0.0)
    [(n, out)] = frames_of(plane)
    assert n == "nb" and out.hop_limit == 1
    plane.from_link([sealed(A, B, hop=1)], now=0.0)
    [(n, oob)] = frames_of(plane)
    # an out-of-band Time Exceeded goes back towards A, from C's /64 network address
    assert n == "na" and oob.dst == A.address and oob.src == C.address[:8] + bytes(8)
    assert oob.hop_limit == 63
    assert plane.counters.hop_limit_expired == 1 and plane.counters.oob_icmp_sent == 1


def test_destination_decrements_and_writes_inner_hop_limit() -> None:
    plane, router = make_plane(B)
    router.add(A, "na")
    plane.from_link([sealed(A, B, hop=2, inner_hop=3)], now=0.0)
    [delivered] = plane.take_to_tun()
    assert delivered[7] == 1
    plane.from_link([sealed(A, B, hop=1)], now=0.0)
    assert plane.take_to_tun() == []
    [(n, oob)] = frames_of(plane)
    assert n == "na" and oob.dst == A.address


def test_oob_time_exceeded_round_trip_reaches_the_origin_tun() -> None:
    pa, ra = make_plane(A)
    pc, rc = make_plane(C)
    ra.add(B, "via c")
    ra.add(C, "via c")
    rc.add(A, "na")
    rc.add(B, "nb")
    inner = ipv6_packet(A.address, B.address, hop=2, payload=b"traceroute probe")
    pa.from_tun([inner], now=0.0)
    [(_, frame)] = take_frames(pa)
    assert parse_frame(frame).hop_limit == 1
    pc.from_link([parse_frame(frame)], now=0.0)
    [(n, oob_frame)] = take_frames(pc)
    assert n == "na"
    pa.from_link([parse_frame(oob_frame)], now=0.0)
    [icmp_packet] = pa.take_to_tun()
    assert icmp_packet[8:24] == C.address[:8] + bytes(8)  # generator's /64 network address
    assert icmp_packet[24:40] == A.address
    assert icmp_packet[7] == 62  # 64, minus C's step, minus A's step
    assert icmp_packet[40:42] == b"\x03\x00" and icmp_packet[44:48] == bytes(4)
    assert icmp_packet[48:] == inner  # the original packet as A sent it
    assert icmpv6_checksum_ok(icmp_packet)
    assert pa.counters.icmp_received == 1


def test_oob_no_route_when_entries_exist_but_none_selected() -> None:
    pa, ra = make_plane(A)
    pc, rc = make_plane(C)
    ra.add(C, "nc")
    ra.add(B, "nc")  # A needs B's key to open the quoted body
    rc.add(A, "na")
    rc.add(B, "nb", selected=False)
    p = sealed(A, B, hop=20)
    pc.from_link([p], now=0.0)
    [(n, oob)] = frames_of(pc)
    assert n == "na" and pc.counters.no_route == 1
    key = SharedKey(shared_secret(A.secret, C.public_key))
    plain = key.open(oob.body)
    assert plain[:4] == b"\x01\x02\x00\x00" and plain[4:20] == B.address
    ip = plain[20:]
    assert ip[8:24] == C.address[:8] + bytes(8) and ip[24:40] == A.address and ip[7] == 64
    assert ip[40:42] == b"\x01\x00" and ip[48:] == p.body
    assert icmpv6_checksum_ok(ip)
    pa.from_link([oob], now=0.0)
    [icmp_packet] = pa.take_to_tun()
    assert icmp_packet[40:42] == b"\x01\x00" and icmp_packet[7] == 62
    assert icmp_packet[48:] == ipv6_packet(A.address, B.address, payload=b"p" * 30)


def test_oob_quote_is_emptied_above_1232_bytes_and_receiver_drops_it() -> None:
    pa, ra = make_plane(A)
    pc, rc = make_plane(C)
    ra.add(C, "nc")
    ra.add(B, "nc")
    rc.add(A, "na")
    p = sealed(A, B, hop=1, payload=bytes(1232 - 32 - 40 + 1))
    assert len(p.body) == 1233
    pc.from_link([p], now=0.0)
    [(_, oob)] = frames_of(pc)
    plain = SharedKey(shared_secret(A.secret, C.public_key)).open(oob.body)
    assert len(plain) == 4 + 16 + 48
    pa.from_link([oob], now=0.0)
    assert pa.take_to_tun() == [] and pa.counters.icmp_malformed == 1
    # exactly 1232 bytes is still quoted
    p = sealed(A, B, hop=1, payload=bytes(1232 - 32 - 40))
    pc.from_link([p], now=0.0)
    [(_, oob)] = frames_of(pc)
    pa.from_link([oob], now=0.0)
    [icmp_packet] = pa.take_to_tun()
    assert len(icmp_packet) == 48 + 1232 - 32


def test_oob_without_route_to_source_is_dropped_and_requests_a_route() -> None:
    pc, rc = make_plane(C)
    rc.add(B, "nb", selected=False)
    pc.from_link([sealed(A, B, hop=5)], now=0.0)
    assert take_frames(pc) == [] and pc.counters.oob_icmp_dropped == 1
    assert A.subnet in rc.requests


def test_no_oob_about_our_own_packets() -> None:
    pc, rc = make_plane(C)
    rc.add(B, "nb", selected=False)
    pc.from_link([DataPacket(C.address[:8] + bytes(8), B.address, 40, bytes(60))], now=0.0)
    assert take_frames(pc) == [] and pc.counters.oob_icmp_dropped == 1


def test_oob_for_unknown_original_destination_is_dropped() -> None:
    pa, ra = make_plane(A)
    pc, rc = make_plane(C)
    ra.add(C, "nc")
    rc.add(A, "na")
    pc.from_link([sealed(A, B, hop=1)], now=0.0)
    [(_, oob)] = frames_of(pc)
    pa.from_link([oob], now=0.0)  # A has no route entry for B: cannot decrypt the quote
    assert pa.take_to_tun() == [] and pa.counters.icmp_no_key == 1


def test_malformed_oob_payloads_are_counted() -> None:
    pa, ra = make_plane(A)
    ra.add(C, "nc")
    ra.add(B, "nb")
    key = SharedKey(shared_secret(C.secret, A.public_key))
    bad = [
        B.address + bytes(47),  # 63 bytes: too short
        B.address + bytes(1281),  # too long
        B.address + b"\x40" + bytes(60),  # not IPv6
        B.address + ipv6_packet(C.address, A.address, payload=bytes(4), next_header=58) + bytes(4),
    ]
    for payload in bad:
        body = key.seal(b"\x01\x02\x00\x00" + payload)
        pa.from_link([DataPacket(C.address, A.address, 10, body)], now=0.0)
    assert pa.take_to_tun() == []
    assert pa.counters.icmp_malformed == 4


def test_undecryptable_and_bad_payloads_are_counted_not_raised() -> None:
    pb, rb = make_plane(B)
    rb.add(A, "na")
    key = SharedKey(shared_secret(A.secret, B.public_key))
    packets = [
        DataPacket(A.address, B.address, 10, bytes(31)),
        DataPacket(A.address, B.address, 10, bytes(100)),
        DataPacket(A.address, B.address, 10, key.seal(b"\x02\x00\x00\x00" + bytes(40))),
        DataPacket(A.address, B.address, 10, key.seal(b"\x01\x07\x00\x00" + bytes(40))),
        DataPacket(A.address, B.address, 10, key.seal(b"\x01\x00\x00\x00" + bytes(39))),
    ]
    pb.from_link(packets, now=0.0)
    assert pb.take_to_tun() == [] and pb.take_messages() == []
    assert pb.counters.decrypt_failed == 2 and pb.counters.bad_payload == 3


def test_unknown_sender_is_parked_then_delivered_when_its_route_appears() -> None:
    pb, rb = make_plane(B)
    p = sealed(A, B, hop=10)
    pb.from_link([p], now=0.0)
    assert pb.take_to_tun() == [] and rb.requests == [A.subnet]
    assert pb.counters.awaiting_key == 1 and pb.next_deadline() == 15.0
    rb.add(A, "na")
    pb.route_changes([A.subnet], now=1.0)
    [delivered] = pb.take_to_tun()
    assert delivered[7] == 9  # decremented once, not again on release
    assert pb.next_deadline() is None


def test_incoming_queue_limits_and_timeout() -> None:
    pb, _rb = make_plane(B)
    pb.from_link([sealed(A, B, hop=10) for _ in range(101)], now=0.0)
    assert pb.counters.awaiting_key == 100 and pb.counters.awaiting_key_dropped == 1
    pb.tick(14.9)
    assert pb.queued == 100
    pb.tick(15.0)
    assert pb.queued == 0 and pb.counters.awaiting_key_dropped == 101
    assert pb.take_to_tun() == []


def test_incoming_queue_metric_tells_refusals_timeouts_and_releases_apart() -> None:
    pb, rb = make_plane(B)
    pb.from_link([sealed(A, B, hop=10) for _ in range(101)], now=0.0)  # one over the /64 limit
    pb.tick(15.0)  # the 100 parked ones time out
    pb.from_link([sealed(A, B, hop=10) for _ in range(3)], now=20.0)
    rb.add(A, "na")
    pb.route_changes([A.subnet], now=21.0)  # these 3 are released
    assert len(pb.take_to_tun()) == 3

    families = {f.name: f for f in NodeCollector(SimpleNamespace(dataplane=pb))._data_plane()}  # type: ignore[arg-type]
    incoming = {
        s.labels["event"]: s.value
        for s in families["mycelium_router_incoming_packet_queue"].samples
    }
    assert incoming == {
        "enqueued": 103,
        "dequeued": 3,
        "dropped_query_timeout": 100,
        "queue_full_global": 0,
        "queue_full_subnet": 1,
    }
