"""ICMPv6 errors the data plane writes to the TUN or wraps as out-of-band ICMP (docs/wire.md
§5.5, §9.3).

Only error messages are built here, and rebuilt from out-of-band reports, never parsed beyond
the fixed 40 + 8 byte headers: these packets are rare, so clarity beats speed. How many we
originate is rate limited (RFC 4443 §2.4 (f)): a stranger sending packets we must refuse would
otherwise make us encrypt and send one error each.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ..checksum import checksum
from ..crypto import CryptoError, KeyCache
from .counters import Counters

IPV6_HEADER_SIZE = 40
ICMP6_HEADER_SIZE = 8
NEXT_HEADER_ICMPV6 = 58
#: RFC 8200 minimum MTU: an ICMPv6 error must fit in it (RFC 4443 §2.4 (c)).
MIN_IPV6_MTU = 1280
#: Largest quote of an offending packet: 1280 - 40 - 8.
MAX_QUOTE = MIN_IPV6_MTU - IPV6_HEADER_SIZE - ICMP6_HEADER_SIZE

DEST_UNREACHABLE = 1
TIME_EXCEEDED = 3
#: Destination Unreachable codes.
CODE_NO_ROUTE = 0
CODE_ADDRESS_UNREACHABLE = 3
CODE_SOURCE_POLICY = 5
#: Time Exceeded code.
CODE_HOP_LIMIT = 0

#: Errors we originate, per second and in a burst, in each of two token buckets (one for errors
#: written to our TUN, one for out-of-band errors sent to remote sources).
ERRORS_PER_SECOND = 100.0
ERROR_BURST = 100

_IPV6 = struct.Struct("!IHBB16s16s")
_ZERO4 = bytes(4)


def icmpv6_packet(
    src: bytes,
    dst: bytes,
    hop_limit: int,
    icmp_type: int,
    code: int,
    body: bytes | bytearray | memoryview,
    rest: bytes = _ZERO4,
) -> bytes:
    """A complete IPv6 + ICMPv6 packet with a correct checksum.

    ``rest`` is the 4 type-specific header bytes (zero for the error types we generate).
    """
    body = bytes(body)
    length = ICMP6_HEADER_SIZE + len(body)
    pseudo = src + dst + struct.pack("!I3xB", length, NEXT_HEADER_ICMPV6)
    icmp = bytes((icmp_type, code, 0, 0)) + rest + body
    csum = checksum(pseudo + icmp)
    header = _IPV6.pack(0x60000000, length, NEXT_HEADER_ICMPV6, hop_limit & 0xFF, src, dst)
    return header + icmp[:2] + csum.to_bytes(2, "big") + icmp[4:]


def error_reply(
    src: bytes, dst: bytes, hop_limit: int, icmp_type: int, code: int, offending: bytes
) -> bytes:
    """An ICMPv6 error quoting at most ``MAX_QUOTE`` bytes of ``offending`` (total ≤ 1280)."""
    return icmpv6_packet(src, dst, hop_limit, icmp_type, code, offending[:MAX_QUOTE])


#: Accepted size of an out-of-band ICMP payload after its user-data header (64..1296).
OOB_MIN = IPV6_HEADER_SIZE + ICMP6_HEADER_SIZE + 16
OOB_MAX = MIN_IPV6_MTU + 16


def rebuild_oob(
    src: bytes,
    dst: bytes,
    hop: int,
    p: bytes,
    public_key_for: Callable[[bytes], bytes | None],
    keys: KeyCache,
    c: Counters,
) -> bytes | None:
    """The ICMPv6 packet for the TUN rebuilt from an out-of-band report ``p`` (its payload after
    the user-data header, docs/wire.md §5.5), or None, counted, when it does not hold up."""
    if not OOB_MIN <= len(p) <= OOB_MAX:
        c.icmp_malformed += 1
        return None
    public_key = public_key_for(p[:16])
    if public_key is None:
        c.icmp_no_key += 1
        return None
    ip = p[16:]
    payload_len = int.from_bytes(ip[4:6], "big")
    if ip[0] >> 4 != 6 or 40 + payload_len > len(ip) or payload_len < ICMP6_HEADER_SIZE:
        c.icmp_malformed += 1
        return None
    message = ip[40 : 40 + payload_len]
    kind, code = message[0], message[1]
    known_error = (kind == DEST_UNREACHABLE and code <= 6) or (kind == TIME_EXCEEDED and code <= 1)
    rest = bytes(4) if known_error else message[4:8]
    try:
        original = keys.get(public_key).open(message[8:])
    except CryptoError:
        c.icmp_malformed += 1  # always the case when the generator emptied the quote
        return None
    c.icmp_received += 1
    return icmpv6_packet(src, dst, hop, kind, code, original[4:], rest)
