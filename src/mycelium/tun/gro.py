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

from ..checksum import ones_sum

#: ``struct virtio_net_hdr`` (little-endian, as the kernel uses it on little-endian hosts
#: without TUNSETVNETBE): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
VNET_HDR = struct.Struct("<BBHHHH")
VNET_HDR_LEN = VNET_HDR.size
PLAIN_HDR = bytes(VNET_HDR_LEN)

_NEEDS_CSUM = 1
_GSO_TCPV6 = 4
_IPV6_LEN = 40
_TCP_CSUM_OFFSET = 16
_ACK = 0x10
_PSH = 0x08
#: Largest IPv6 payload length a super-packet may declare.
_MAX_PAYLOAD = 65535
#: The kernel's cap on segments in one GSO packet (``gso_max_segs`` of a TUN device is higher,
#: but 64 already keeps every super-packet under 64 KiB at the overlay MTU).
_MAX_SEGMENTS = 64
_SEQ = struct.Struct("!I")


def _pseudo_header_sum(packet: bytes, tcp_length: int) -> int:
    """The folded (not inverted) ones'-complement sum of the IPv6 pseudo-header."""
    return ones_sum(packet[8:40] + tcp_length.to_bytes(4, "big") + b"\x00\x00\x00\x06")


def _join(first: bytes, payloads: list[bytes], last: bytes, header_len: int, mss: int) -> bytes:
    """One GSO super-packet: ``first``'s headers, then every payload of the run in order."""
    tcp_length = header_len - _IPV6_LEN + sum(map(len, payloads))
    head = bytearray(first[:header_len])
    head[4:6] = tcp_length.to_bytes(2, "big")
    head[53] = last[53]  # PSH, if the last segment pushed
    head[54:56] = last[54:56]  # the freshest window
    head[56:58] = _pseudo_header_sum(first, tcp_length).to_bytes(2, "big")
    vnet = VNET_HDR.pack(_NEEDS_CSUM, _GSO_TCPV6, header_len, mss, _IPV6_LEN, _TCP_CSUM_OFFSET)
    return b"".join((vnet, head, *payloads))


def coalesce(packets: list[bytes]) -> list[bytes]:
    """The buffers to write for ``packets``, in order, each starting with a virtio_net_hdr.

    A segment may extend the current run when it is IPv6 (no extension header) carrying TCP with
    only ACK (and PSH) set, its declared length matches, and it continues the run: same version,
    traffic class and flow label, next header, hop limit, addresses and ports; same ack number,
    header length and options; the next sequence number; at most the run's segment size. The
    checks are slice compares against the run's first packet (no per-packet key building)."""
    out: list[bytes] = []
    append = out.append
    payloads: list[bytes] = []
    first = last = b""
    hl = mss = next_seq = room = 0
    fixed0 = fixed1 = ack = options = b""
    seq_of = _SEQ.unpack_from
    for packet in packets:
        n = len(packet)
        if (
            n > _IPV6_LEN + 20
            and packet[6] == 6
            and packet[0] >> 4 == 6
            and packet[53] | _PSH == _ACK | _PSH
            and not packet[52] & 0x0F
            and (packet[4] << 8 | packet[5]) == n - _IPV6_LEN
        ):
            h = _IPV6_LEN + (packet[52] >> 4) * 4
            payload = n - h
            if payload > 0 and h >= _IPV6_LEN + 20:
                seq = seq_of(packet, 44)[0]
                if (
                    payloads
                    and seq == next_seq
                    and h == hl
                    and payload <= mss
                    and payload <= room
                    and packet[6:44] == fixed1
                    and packet[48:53] == ack
                    and packet[60:h] == options
                    and packet[0:4] == fixed0
                ):
                    payloads.append(packet[h:])
                    last = packet
                    next_seq = (seq + payload) & 0xFFFFFFFF
                    room -= payload
                    if payload < mss or packet[53] & _PSH or len(payloads) >= _MAX_SEGMENTS:
                        # a short or pushed segment ends what the sender wrote in one go
                        append(_join(first, payloads, last, hl, mss))
                        payloads = []
                    continue
                if payloads:
                    append(_flush(first, payloads, last, hl, mss))
                if packet[53] & _PSH:
                    append(PLAIN_HDR + packet)
                    payloads = []
                    continue
                first = last = packet
                payloads = [packet[h:]]
                hl, mss = h, payload
                next_seq = (seq + payload) & 0xFFFFFFFF
                room = _MAX_PAYLOAD - (h - _IPV6_LEN) - payload
                fixed0, fixed1 = packet[0:4], packet[6:44]
                ack, options = packet[48:53], packet[60:h]
                continue
        if payloads:
            append(_flush(first, payloads, last, hl, mss))
            payloads = []
        append(PLAIN_HDR + packet)
    if payloads:
        append(_flush(first, payloads, last, hl, mss))
    return out


def _flush(first: bytes, payloads: list[bytes], last: bytes, header_len: int, mss: int) -> bytes:
    """What a run becomes: the packet itself when it has one segment, else a super-packet."""
    if len(payloads) == 1:
        return PLAIN_HDR + first
    return _join(first, payloads, last, header_len, mss)
