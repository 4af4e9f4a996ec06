"""Receive-side coalescing of TCP segments before they are written to the TUN device.

Every packet written to a TUN fd is a separate trip through the kernel's IPv6 and TCP receive
path, and that per-packet kernel work is most of what a bulk transfer costs the receiving host.
With ``IFF_VNET_HDR`` a write may instead carry a GSO super-packet: consecutive segments of one
TCP flow, joined into one IPv6 packet that the stack takes in one pass, as if the NIC had done
GRO. This module decides which consecutive packets may be joined and builds the buffers to write,
each prefixed by its ``virtio_net_hdr``. It needs no checksum over the payload: the super-packet
is marked ``NEEDS_CSUM`` with the pseudo-header sum in the TCP checksum field, the form the
kernel expects for a partially checksummed packet. The segments were authenticated end to end,
so nothing is trusted that the sender did not write.

Only runs of adjacent packets are joined (a bulk flow arrives in runs); anything unusual - IPv6
extension headers, SYN/FIN/RST/URG/ECN flags, differing TCP options, a gap in sequence numbers -
ends the run and is written as it came.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Final

from ..checksum import ones_sum

#: ``struct virtio_net_hdr`` (little-endian, as the kernel uses it on little-endian hosts
#: without TUNSETVNETBE): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
VNET_HDR: Final = struct.Struct("<BBHHHH")
VNET_HDR_LEN: Final = VNET_HDR.size
PLAIN_HDR: Final = bytes(VNET_HDR_LEN)

_NEEDS_CSUM: Final = 1
_GSO_TCPV6: Final = 4
_IPV6_LEN: Final = 40
_TCP_CSUM_OFFSET: Final = 16
_ACK: Final = 0x10
_PSH: Final = 0x08
#: Largest IPv6 payload length a super-packet may declare.
_MAX_PAYLOAD: Final = 65535
#: The kernel's cap on segments in one GSO packet (``gso_max_segs`` of a TUN device is higher,
#: but 64 already keeps every super-packet under 64 KiB at the overlay MTU).
_MAX_SEGMENTS: Final = 64
_HOP_BYTE: Final = [bytes((i,)) for i in range(256)]
#: Where the packet starts in a plaintext the data plane decrypted (behind its user header).
_DELIVERED_AT: Final = 4


def _u32(data: bytes, i: int) -> int:
    """The big-endian u32 at ``data[i]``: four byte loads once compiled, where struct's
    ``unpack_from`` is a call and a tuple per packet."""
    return data[i] << 24 | data[i + 1] << 16 | data[i + 2] << 8 | data[i + 3]


def _pseudo_header_sum(packet: bytes | bytearray, tcp_length: int) -> int:
    """The folded (not inverted) ones'-complement sum of the IPv6 pseudo-header."""
    return ones_sum(packet[8:40] + tcp_length.to_bytes(4, "big") + b"\x00\x00\x00\x06")


def _join(
    first: bytes, payloads: list[bytes], last: bytes, o: int, hl: int, mss: int, hop: int
) -> bytes:
    """One GSO super-packet: ``first``'s headers (from offset ``o``, hop limit ``hop`` unless
    negative), then every payload of the run in order."""
    tcp_length = hl - _IPV6_LEN + sum(map(len, payloads))
    head = bytearray(first[o : o + hl])
    head[4:6] = tcp_length.to_bytes(2, "big")
    if hop >= 0:
        head[7] = hop
    head[53] = last[o + 53]  # PSH, if the last segment pushed
    head[54:56] = last[o + 54 : o + 56]  # the freshest window
    head[56:58] = _pseudo_header_sum(head, tcp_length).to_bytes(2, "big")
    vnet = VNET_HDR.pack(_NEEDS_CSUM, _GSO_TCPV6, hl, mss, _IPV6_LEN, _TCP_CSUM_OFFSET)
    return b"".join((vnet, head, *payloads))


def _single(packet: bytes, o: int, hop: int) -> bytes:
    """One packet as it is written (from offset ``o``, hop limit ``hop`` unless negative)."""
    if hop < 0:
        return PLAIN_HDR + packet if o == 0 else PLAIN_HDR + packet[o:]
    return b"".join((PLAIN_HDR, packet[o : o + 7], _HOP_BYTE[hop], packet[o + 8 :]))


def coalesce(packets: Sequence[bytes]) -> list[bytes]:
    """The buffers to write for ``packets`` (IPv6 packets), in order, each behind a
    virtio_net_hdr."""
    return _coalesce(packets, 0, repeat(-1))


def coalesce_delivered(plaintexts: Sequence[bytes], hops: Sequence[int]) -> list[bytes]:
    """The buffers to write for packets the data plane decrypted: each plaintext is the 4-byte
    user header and the packet as its origin sent it, ``hops`` the hop limit to write into it.
    The hop limit is set while the buffers are built, so a packet is copied once, not twice."""
    return _coalesce(plaintexts, _DELIVERED_AT, hops)


def delivered_buffer(plaintext: bytes, hop: int) -> bytes:
    """The buffer for one decrypted packet on its own (``coalesce_delivered`` of one, without
    the layers around it: on a CPU back from idle they cost a lone ping some 10 µs)."""
    return _single(plaintext, _DELIVERED_AT, hop)


def _coalesce(packets: Sequence[bytes], o: int, hops: Iterable[int]) -> list[bytes]:
    """A segment may extend the current run when it is IPv6 (no extension header) carrying TCP
    with only ACK (and PSH) set, its declared length matches, and it continues the run: same
    version, traffic class and flow label, next header, hop limit, addresses and ports; same ack
    number, header length and options; the next sequence number; at most the run's segment
    size. The checks are slice compares against the run's first packet (no per-packet key
    building). Each packet starts at offset ``o`` of its buffer."""
    if len(packets) == 1:  # a lone packet (a ping after a pause) skips the run machinery
        return [_single(packets[0], o, next(iter(hops)))]
    out: list[bytes] = []
    append = out.append
    payloads: list[bytes] = []
    first = last = b""
    hl = mss = next_seq = room = run_hop = 0
    fixed0 = fixed1 = ack = options = head44 = b""
    first_len = -1  # the run's first packet's length while a run is open
    # Offsets of the fields checked, in the buffer.
    at_len, at_nh, at_addr_end, at_seq, at_ack_end = o + 4, o + 6, o + 44, o + 44, o + 53
    at_off, at_flags, at_opts, min_len = o + 52, o + 53, o + 60, o + _IPV6_LEN + 20
    for packet, hop in zip(packets, hops, strict=False):  # hops may be endless (repeat)
        n = len(packet)
        # The bulk case first: a full-size segment right after the last one of the run. Equal
        # to the run's first packet in its first 44 bytes (version, class, flow label, length,
        # next header, hop limit, addresses, ports), ack number and header length, and options,
        # it passed every check the first one passed.
        if (
            n == first_len
            and hop == run_hop
            and packet[o:at_addr_end] == head44
            and _u32(packet, at_seq) == next_seq
            and packet[at_seq + 4 : at_ack_end] == ack
            and packet[at_flags] | _PSH == _ACK | _PSH
            and packet[at_opts : o + hl] == options
            and mss <= room
        ):
            payloads.append(packet[o + hl :])
            last = packet
            next_seq = (next_seq + mss) & 0xFFFFFFFF
            room -= mss
            if packet[at_flags] & _PSH or len(payloads) >= _MAX_SEGMENTS:
                append(_join(first, payloads, last, o, hl, mss, run_hop))
                payloads = []
                first_len = -1
            continue
        if (
            n > min_len
            and packet[at_nh] == 6
            and packet[o] >> 4 == 6
            and packet[at_flags] | _PSH == _ACK | _PSH
            and not packet[at_off] & 0x0F
            and (packet[at_len] << 8 | packet[at_len + 1]) == n - o - _IPV6_LEN
        ):
            h = _IPV6_LEN + (packet[at_off] >> 4) * 4
            payload = n - o - h
            if payload > 0 and h >= _IPV6_LEN + 20:
                seq = _u32(packet, at_seq)
                if (
                    payloads
                    and seq == next_seq
                    and h == hl
                    and payload <= mss
                    and payload <= room
                    and hop == run_hop
                    and packet[at_nh:at_addr_end] == fixed1
                    and packet[at_seq + 4 : at_ack_end] == ack
                    and packet[at_opts : o + h] == options
                    and packet[o : o + 4] == fixed0
                ):
                    payloads.append(packet[o + h :])
                    last = packet
                    next_seq = (seq + payload) & 0xFFFFFFFF
                    room -= payload
                    if payload < mss or packet[at_flags] & _PSH or len(payloads) >= _MAX_SEGMENTS:
                        # a short or pushed segment ends what the sender wrote in one go
                        append(_join(first, payloads, last, o, hl, mss, run_hop))
                        payloads = []
                        first_len = -1
                    continue
                if payloads:
                    append(_flush(first, payloads, last, o, hl, mss, run_hop))
                    payloads = []
                    first_len = -1
                if packet[at_flags] & _PSH:
                    append(_single(packet, o, hop))
                    continue
                first = last = packet
                first_len, head44 = n, packet[o:at_addr_end]
                payloads = [packet[o + h :]]
                hl, mss, run_hop = h, payload, hop
                next_seq = (seq + payload) & 0xFFFFFFFF
                room = _MAX_PAYLOAD - (h - _IPV6_LEN) - payload
                fixed0, fixed1 = packet[o : o + 4], packet[at_nh:at_addr_end]
                ack, options = packet[at_seq + 4 : at_ack_end], packet[at_opts : o + h]
                continue
        if payloads:
            append(_flush(first, payloads, last, o, hl, mss, run_hop))
            payloads = []
            first_len = -1
        append(_single(packet, o, hop))
    if payloads:
        append(_flush(first, payloads, last, o, hl, mss, run_hop))
    return out


def _flush(
    first: bytes, payloads: list[bytes], last: bytes, o: int, hl: int, mss: int, hop: int
) -> bytes:
    """What a run becomes: the packet itself when it has one segment, else a super-packet."""
    if len(payloads) == 1:
        return _single(first, o, hop)
    return _join(first, payloads, last, o, hl, mss, hop)
