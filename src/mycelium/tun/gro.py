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


def _segment(packet: bytes) -> tuple[bytes, int, int, int, int] | None:
    """(flow key, TCP header length, payload length, seq, flags) of a joinable segment."""
    if len(packet) < _IPV6_LEN + 20 or packet[6] != 6 or packet[0] >> 4 != 6:
        return None
    if int.from_bytes(packet[4:6], "big") != len(packet) - _IPV6_LEN:
        return None
    thl = (packet[52] >> 4) * 4
    payload = len(packet) - _IPV6_LEN - thl
    flags = packet[53]
    if thl < 20 or payload <= 0 or flags & ~_PSH != _ACK or packet[52] & 0x0F:
        return None
    # Version/class/flow label, hop limit, addresses, ports, ack number, header length and
    # options must match for segments to be one stream of bytes (the window may move on).
    key = packet[0:4] + packet[7:44] + packet[48:53] + packet[60 : 40 + thl]
    seq = int.from_bytes(packet[44:48], "big")
    return key, thl, payload, seq, flags


def _pseudo_header_sum(packet: bytes, tcp_length: int) -> int:
    """The folded (not inverted) ones'-complement sum of the IPv6 pseudo-header."""
    return ones_sum(packet[8:40] + tcp_length.to_bytes(4, "big") + b"\x00\x00\x00\x06")


def _join(run: list[bytes], thl: int, mss: int) -> bytes:
    first = run[0]
    header_len = _IPV6_LEN + thl
    payload = b"".join(p[header_len:] for p in run)
    tcp_length = thl + len(payload)
    head = bytearray(first[:header_len])
    head[4:6] = tcp_length.to_bytes(2, "big")
    last = run[-1]
    head[53] = last[53]  # PSH, if the last segment pushed
    head[54:56] = last[54:56]  # the freshest window
    head[56:58] = _pseudo_header_sum(first, tcp_length).to_bytes(2, "big")
    vnet = VNET_HDR.pack(_NEEDS_CSUM, _GSO_TCPV6, header_len, mss, _IPV6_LEN, _TCP_CSUM_OFFSET)
    return b"".join((vnet, head, payload))


def coalesce(packets: list[bytes]) -> list[bytes]:
    """The buffers to write for ``packets``, in order, each starting with a virtio_net_hdr."""
    out: list[bytes] = []
    run: list[bytes] = []
    run_key = b""
    run_thl = run_mss = run_next = run_bytes = 0

    def flush() -> None:
        if len(run) == 1:
            out.append(PLAIN_HDR + run[0])
        elif run:
            out.append(_join(run, run_thl, run_mss))
        run.clear()

    for packet in packets:
        seg = _segment(packet)
        if seg is None:
            flush()
            out.append(PLAIN_HDR + packet)
            continue
        key, thl, payload, seq, flags = seg
        if (
            run
            and key == run_key
            and seq == run_next
            and payload <= run_mss
            and len(run) < _MAX_SEGMENTS
            and run_bytes + payload <= _MAX_PAYLOAD - thl
        ):
            run.append(packet)
            run_next = (seq + payload) & 0xFFFFFFFF
            run_bytes += payload
            if payload < run_mss or flags & _PSH:
                flush()  # a short or pushed segment ends what the sender wrote in one go
            continue
        flush()
        run.append(packet)
        run_key, run_thl, run_mss, run_bytes = key, thl, payload, payload
        run_next = (seq + payload) & 0xFFFFFFFF
        if flags & _PSH:
            flush()
    flush()
    return out
