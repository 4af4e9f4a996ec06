"""TCP coalescing for TUN writes: what may be joined, and that the kernel's view of the result is
the same byte stream with a checksum that completes correctly."""

from __future__ import annotations

import os
import struct

from hypothesis import given
from hypothesis import strategies as st

from dp_fakes import reference_checksum
from mycelium.tun.gro import (
    PLAIN_HDR,
    VNET_HDR,
    VNET_HDR_LEN,
    coalesce,
    coalesce_delivered,
    delivered_buffer,
)
from mycelium.tun.linux import TunDevice

SRC = bytes.fromhex("04960b18c3a920a75ffcf64f14cc002d")
DST = bytes.fromhex("0514d8f2e497c1d2e3c99e4094d5d9f0")
ACK, PSH, SYN, FIN = 0x10, 0x08, 0x02, 0x01
TIMESTAMPS = bytes.fromhex("0101080a0000000100000002")
MSS = 1328


def tcp_segment(
    seq: int,
    payload: bytes,
    *,
    flags: int = ACK,
    sport: int = 40000,
    src: bytes = SRC,
    options: bytes = TIMESTAMPS,
    window: int = 500,
    next_header: int = 6,
) -> bytes:
    """An IPv6 + TCP segment with a correct checksum."""
    thl = 20 + len(options)
    tcp = bytearray(
        struct.pack(
            "!HHIIBBHHH", sport, 5201, seq & 0xFFFFFFFF, 7777, (thl // 4) << 4, flags, window, 0, 0
        )
    )
    tcp += options + payload
    pseudo = src + DST + struct.pack("!I", len(tcp)) + b"\x00\x00\x00\x06"
    tcp[16:18] = reference_checksum(pseudo + bytes(tcp)).to_bytes(2, "big")
    return struct.pack("!IHBB", 0x60000000, len(tcp), next_header, 64) + src + DST + bytes(tcp)


def stream(seq: int, sizes: list[int], **kwargs: object) -> list[bytes]:
    out = []
    for i, size in enumerate(sizes):
        out.append(tcp_segment(seq, bytes([i % 251]) * size, **kwargs))  # type: ignore[arg-type]
        seq += size
    return out


def kernel_completes(buffer: bytes) -> bytes:
    """What the kernel does with a NEEDS_CSUM write: sum from csum_start, store the complement."""
    flags, gso_type, hdr_len, _, start, offset = VNET_HDR.unpack_from(buffer)
    packet = bytearray(buffer[VNET_HDR_LEN:])
    assert flags == 1 and gso_type == 4 and start == 40 and offset == 16
    assert hdr_len == 40 + (packet[52] >> 4) * 4
    packet[56:58] = reference_checksum(bytes(packet[40:])).to_bytes(2, "big")
    return bytes(packet)


def tcp_checksum_ok(packet: bytes) -> bool:
    length = struct.unpack("!H", packet[4:6])[0]
    assert len(packet) == 40 + length
    pseudo = packet[8:40] + struct.pack("!I", length) + b"\x00\x00\x00\x06"
    return reference_checksum(pseudo + packet[40:]) == 0


def test_a_run_of_full_segments_becomes_one_gso_packet() -> None:
    segments = stream(1000, [MSS] * 5 + [300])
    [buffer] = coalesce(segments)
    _, _, _, gso_size, _, _ = VNET_HDR.unpack_from(buffer)
    assert gso_size == MSS
    packet = kernel_completes(buffer)
    assert tcp_checksum_ok(packet)
    assert packet[40 + 32 :] == b"".join(s[40 + 32 :] for s in segments)
    assert packet[44:48] == segments[0][44:48]  # the first sequence number


def test_push_and_short_segments_end_a_run() -> None:
    segments = stream(0, [MSS, MSS, 100, MSS, MSS])
    segments[4] = tcp_segment(4 * MSS - (MSS - 100), b"z" * MSS, flags=ACK | PSH)
    buffers = coalesce(segments)
    assert len(buffers) == 2
    first, second = (kernel_completes(b) for b in buffers)
    assert len(first) == 40 + 32 + 2 * MSS + 100
    assert second[53] == ACK | PSH  # the pushed segment's flags are kept
    assert all(tcp_checksum_ok(p) for p in (first, second))


def test_the_latest_window_is_kept() -> None:
    segments = stream(0, [MSS, MSS])
    segments[1] = tcp_segment(MSS, b"b" * MSS, window=900)
    packet = kernel_completes(coalesce(segments)[0])
    assert struct.unpack("!H", packet[54:56])[0] == 900
    assert tcp_checksum_ok(packet)


def test_sequence_numbers_wrap() -> None:
    segments = stream(2**32 - MSS // 2, [MSS, MSS, MSS])
    assert len(coalesce(segments)) == 1


def test_what_may_not_be_joined_is_written_as_it_came() -> None:
    gap = stream(0, [MSS]) + stream(MSS + 1, [MSS])
    other_flow = stream(0, [MSS]) + stream(MSS, [MSS], sport=40001)
    options_differ = stream(0, [MSS]) + stream(MSS, [MSS], options=bytes(12))
    syn = [tcp_segment(0, b"s" * MSS, flags=SYN | ACK), tcp_segment(MSS, b"t" * MSS)]
    fin = [tcp_segment(0, b"s" * MSS, flags=FIN | ACK), tcp_segment(MSS, b"t" * MSS)]
    longer = stream(0, [MSS, MSS + 1])
    pure_acks = stream(0, [0, 0])
    extension_header = [tcp_segment(0, b"u" * MSS, next_header=0)] * 2
    udp = [b"\x60" + bytes(5) + b"\x11\x40" + SRC + DST] * 2
    for packets in (
        gap,
        other_flow,
        options_differ,
        syn,
        fin,
        longer,
        pure_acks,
        extension_header,
        udp,
    ):
        assert coalesce(packets) == [PLAIN_HDR + p for p in packets]


def test_super_packets_stay_under_64_kib() -> None:
    segments = stream(0, [MSS] * 200)
    buffers = coalesce(segments)
    packets = [kernel_completes(b) for b in buffers]
    assert all(len(p) - 40 <= 65535 for p in packets)
    assert sum(len(p) - 72 for p in packets) == 200 * MSS
    assert len(buffers) == 5  # 49 segments of 1328 bytes fit in one IPv6 payload


flow_segments = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 1400), st.booleans(), st.booleans()),
    max_size=60,
)


@given(flow_segments)
def test_every_flow_keeps_its_bytes_in_order(spec: list[tuple[int, int, bool, bool]]) -> None:
    """Whatever the interleaving, gaps and pushes, each flow's byte stream is unchanged and every
    written packet completes to a valid checksum."""
    seqs = [0, 0, 0]
    packets, sent = [], {0: b"", 1: b"", 2: b""}
    for flow, size, push, skip in spec:
        if skip:
            seqs[flow] += 7  # a gap: a lost segment
        payload = bytes([flow * 40 + size % 40]) * size
        packets.append(tcp_segment(seqs[flow], payload, sport=flow, flags=ACK | (PSH * push)))
        sent[flow] += payload
        seqs[flow] += size
    received = {0: b"", 1: b"", 2: b""}
    for buffer in coalesce(packets):
        flags = buffer[0]
        packet = kernel_completes(buffer) if flags else buffer[VNET_HDR_LEN:]
        assert tcp_checksum_ok(packet)
        received[struct.unpack("!H", packet[40:42])[0]] += packet[72:]
    assert received == sent


@given(st.lists(st.binary(max_size=120), max_size=20))
def test_arbitrary_bytes_pass_through(packets: list[bytes]) -> None:
    """Nothing that is not two adjacent in-sequence segments of one flow is ever joined."""
    assert coalesce(packets) == [PLAIN_HDR + p for p in packets]


@given(flow_segments, st.integers(1, 255))
def test_decrypted_plaintexts_are_written_as_the_packets_they_carry(
    spec: list[tuple[int, int, bool, bool]], hop: int
) -> None:
    """The data plane hands over plaintexts (user header, packet with its origin's hop limit)
    and the hop limit to write: the buffers are those of the finished packets."""
    seqs = [0, 0, 0]
    packets = []
    for flow, size, push, skip in spec:
        seqs[flow] += 7 * skip
        payload = bytes([flow * 40 + size % 40]) * size
        packets.append(tcp_segment(seqs[flow], payload, sport=flow, flags=ACK | (PSH * push)))
        seqs[flow] += size
    plaintexts = [b"\x01\x00\x00\x00" + p for p in packets]  # as sent: hop limit 64
    finished = [p[:7] + bytes([hop]) + p[8:] for p in packets]
    assert coalesce_delivered(plaintexts, [hop] * len(packets)) == coalesce(finished)


def test_a_hop_limit_change_ends_a_run() -> None:
    plaintexts = [b"\x01\x00\x00\x00" + p for p in stream(0, [MSS] * 4)]
    buffers = coalesce_delivered(plaintexts, [60, 60, 59, 59])
    assert len(buffers) == 2
    assert [kernel_completes(b)[7] for b in buffers] == [60, 59]


@given(st.binary(min_size=8, max_size=1500), st.integers(0, 255))
def test_a_lone_decrypted_packet_is_written_as_a_batch_of_one_would_be(
    packet: bytes, hop: int
) -> None:
    """The TUN's shortcut for one decrypted packet (a ping) writes what the batch path writes."""
    plaintext = b"\x01\x00\x00\x00" + packet
    assert delivered_buffer(plaintext, hop) == coalesce_delivered([plaintext], [hop])[0]
    r, w = os.pipe()
    try:
        tun = TunDevice(w, "pipe", 1400)
        assert tun.write_batch([], [plaintext], [hop]) == 1
        assert os.read(r, 2000) == PLAIN_HDR + packet[:7] + bytes([hop]) + packet[8:]
    finally:
        os.close(r)
        os.close(w)
