"""The Internet checksum (RFC 1071), shared by ICMPv6 generation and TCP coalescing.

The ones'-complement sum of 16-bit big-endian words equals the whole buffer read as one big
integer modulo 0xFFFF (since 2^16 = 1 mod 0xFFFF), which CPython computes in C.
"""

from __future__ import annotations


def ones_sum(data: bytes | bytearray) -> int:
    """The folded ones'-complement sum of ``data`` (0xFFFF, not 0, for a non-zero buffer)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value != 0:
        total = 0xFFFF
    return total


def checksum(data: bytes | bytearray) -> int:
    """The Internet checksum over ``data``: the complement of its ones'-complement sum."""
    return ~ones_sum(data) & 0xFFFF
