"""Babel TLVs as Mycelium carries them (docs/wire.md §10): Hello, IHU, Update, Route/SeqNo request.

Encoders emit only what the reference's decoder accepts. Decoders are strict: a TLV whose length
field disagrees with the length its fields imply, an unknown AE or a bad prefix length is refused
with ``MalformedPacket`` (the caller skips it, the stream stays in sync).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..identity import ROUTER_ID_SIZE, RouterId
from ..subnet import Subnet
from .errors import MalformedPacket

HELLO = 4
IHU = 5
UPDATE = 8
ROUTE_REQUEST = 9
SEQNO_REQUEST = 10

AE_WILDCARD = 0
AE_IPV4 = 1
AE_IPV6 = 2
AE_IPV6_LINK_LOCAL = 3

INFINITY = 0xFFFF
HELLO_FLAG_UNICAST = 0x8000
UPDATE_FLAGS_MASK = 0xC0

_HELLO = struct.Struct("!HHH")
_IHU = struct.Struct("!BBHH")
_UPDATE = struct.Struct("!BBBBHHH")
_RR = struct.Struct("!BBB")
_SNR = struct.Struct("!BBHBB")
_IHU_ADDRESS_SIZE = {AE_WILDCARD: 0, AE_IPV4: 4, AE_IPV6: 16, AE_IPV6_LINK_LOCAL: 8}
_ALL = (1 << 128) - 1
#: Network masks by prefix length, for the Update fast path.
_MASKS = tuple((_ALL << (128 - plen)) & _ALL for plen in range(129))
#: Builds a RouterId without its Python-level length check (the caller has checked the length).
_raw_bytes = bytes.__new__


@dataclass(frozen=True, slots=True)
class Hello:
    seqno: int
    interval_cs: int = 2000
    flags: int = HELLO_FLAG_UNICAST


@dataclass(frozen=True, slots=True)
class Ihu:
    rx_cost: int
    interval_cs: int = 6000


@dataclass(frozen=True, slots=True)
class Update:
    subnet: Subnet
    seqno: int
    metric: int
    router_id: RouterId
    interval_cs: int = 30000
    flags: int = 0

    @property
    def is_retraction(self) -> bool:
        return self.metric == INFINITY


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """A request for one subnet, or for everything (``subnet is None``, the wildcard)."""

    subnet: Subnet | None
    generation: int = 0


@dataclass(frozen=True, slots=True)
class SeqnoRequest:
    subnet: Subnet
    seqno: int
    router_id: RouterId
    hop_count: int = 64


Tlv = Hello | Ihu | Update | RouteRequest | SeqnoRequest


def _prefix_size(plen: int) -> int:
    return (plen + 7) // 8


def _check_ipv6_subnet(subnet: Subnet) -> bytes:
    if not 0 <= subnet.prefix_len <= 128:
        raise ValueError(f"bad prefix length {subnet.prefix_len}")
    return subnet.prefix_bytes()


def encode_tlv(tlv: Tlv) -> bytes:
    """TLV type, length and value."""
    if isinstance(tlv, Update):
        prefix = _check_ipv6_subnet(tlv.subnet)
        value = (
            _UPDATE.pack(
                AE_IPV6,
                tlv.flags & UPDATE_FLAGS_MASK,
                tlv.subnet.prefix_len,
                0,
                tlv.interval_cs,
                tlv.seqno & 0xFFFF,
                tlv.metric,
            )
            + prefix
            + tlv.router_id
        )
        return bytes((UPDATE, len(value))) + value
    if isinstance(tlv, Hello):
        return bytes((HELLO, 6)) + _HELLO.pack(tlv.flags, tlv.seqno & 0xFFFF, tlv.interval_cs)
    if isinstance(tlv, Ihu):
        return bytes((IHU, 6)) + _IHU.pack(AE_WILDCARD, 0, tlv.rx_cost, tlv.interval_cs)
    if isinstance(tlv, RouteRequest):
        if tlv.subnet is None:
            value = _RR.pack(tlv.generation, AE_WILDCARD, 0)
        else:
            prefix = _check_ipv6_subnet(tlv.subnet)
            value = _RR.pack(tlv.generation, AE_IPV6, tlv.subnet.prefix_len) + prefix
        return bytes((ROUTE_REQUEST, len(value))) + value
    if isinstance(tlv, SeqnoRequest):
        if tlv.hop_count < 1:
            raise ValueError("a seqno request needs a hop count of at least 1")
        prefix = _check_ipv6_subnet(tlv.subnet)
        value = (
            _SNR.pack(AE_IPV6, tlv.subnet.prefix_len, tlv.seqno & 0xFFFF, tlv.hop_count, 0)
            + tlv.router_id
            + prefix
        )
        return bytes((SEQNO_REQUEST, len(value))) + value
    raise TypeError(f"not a TLV: {tlv!r}")


def _decode_prefix(ae: int, plen: int, data: bytes | memoryview) -> tuple[Subnet, int]:
    """The subnet carried with address encoding ``ae`` and its byte size."""
    if ae == AE_WILDCARD:
        if plen != 0:
            raise MalformedPacket("wildcard address encoding with a non-zero prefix length")
        return Subnet(0, 0), 0
    if ae == AE_IPV6:
        if plen > 128:
            raise MalformedPacket(f"IPv6 prefix length {plen} > 128")
        size = _prefix_size(plen)
        if len(data) < size:
            raise MalformedPacket("truncated prefix")
        raw = bytes(data[:size]) + bytes(16 - size)
        return Subnet.of(raw, plen), size
    if ae == AE_IPV6_LINK_LOCAL:
        if plen != 64:
            raise MalformedPacket("link-local address encoding needs prefix length 64")
        if len(data) < 8:
            raise MalformedPacket("truncated prefix")
        return Subnet.of(b"\xfe\x80" + bytes(6) + bytes(data[:8]), 64), 8
    # IPv4 (AE 1) is legal babel, but Mycelium routes only 400::/7: nothing to do with it.
    raise MalformedPacket(f"unsupported address encoding {ae}")


def _expect_length(kind: str, value: bytes | memoryview, expected: int) -> None:
    if len(value) != expected:
        raise MalformedPacket(f"{kind} TLV is {len(value)} bytes, its fields need {expected}")


def decode_tlv(tlv_type: int, value: bytes | memoryview) -> Tlv:
    """Decode one TLV value; ``MalformedPacket`` for anything the router must not see."""
    if tlv_type == UPDATE:
        if len(value) < _UPDATE.size:
            raise MalformedPacket("truncated Update")
        ae, flags, plen, omitted, interval, seqno, metric = _UPDATE.unpack_from(value)
        if ae == AE_IPV6 and plen <= 128 and omitted == 0 and len(value) == 50 + (plen + 7) // 8:
            # Fast path for the only Update the reference sends (routing tables see thousands).
            start = 10 + (plen + 7) // 8
            network = int.from_bytes(value[10:start], "big") << (26 - start) * 8
            return Update(
                Subnet(network & _MASKS[plen], plen),
                seqno,
                metric,
                _raw_bytes(RouterId, value[start:]),
                interval,
                flags & UPDATE_FLAGS_MASK,
            )
        if omitted != 0:
            raise MalformedPacket("Update with omitted prefix bytes")
        subnet, size = _decode_prefix(ae, plen, value[_UPDATE.size :])
        _expect_length("Update", value, _UPDATE.size + size + ROUTER_ID_SIZE)
        start = _UPDATE.size + size
        router_id = RouterId(bytes(value[start : start + ROUTER_ID_SIZE]))
        return Update(subnet, seqno, metric, router_id, interval, flags & UPDATE_FLAGS_MASK)
    if tlv_type == HELLO:
        _expect_length("Hello", value, 6)
        flags, seqno, interval = _HELLO.unpack_from(value)
        return Hello(seqno, interval, flags & HELLO_FLAG_UNICAST)
    if tlv_type == IHU:
        if len(value) < _IHU.size:
            raise MalformedPacket("truncated IHU")
        ae, _reserved, rx_cost, interval = _IHU.unpack_from(value)
        if ae not in _IHU_ADDRESS_SIZE:
            raise MalformedPacket(f"unknown IHU address encoding {ae}")
        _expect_length("IHU", value, _IHU.size + _IHU_ADDRESS_SIZE[ae])
        return Ihu(rx_cost, interval)
    if tlv_type == ROUTE_REQUEST:
        if len(value) < _RR.size:
            raise MalformedPacket("truncated route request")
        generation, ae, plen = _RR.unpack_from(value)
        if ae == AE_WILDCARD:
            _expect_length("route request", value, _RR.size)
            if plen != 0:
                raise MalformedPacket("wildcard route request with a prefix length")
            return RouteRequest(None, generation)
        subnet, size = _decode_prefix(ae, plen, value[_RR.size :])
        _expect_length("route request", value, _RR.size + size)
        return RouteRequest(subnet, generation)
    if tlv_type == SEQNO_REQUEST:
        if len(value) < _SNR.size + ROUTER_ID_SIZE:
            raise MalformedPacket("truncated seqno request")
        ae, plen, seqno, hop_count, _reserved = _SNR.unpack_from(value)
        if hop_count == 0:
            raise MalformedPacket("seqno request with hop count 0")
        start = _SNR.size + ROUTER_ID_SIZE
        router_id = RouterId(bytes(value[_SNR.size : start]))
        subnet, size = _decode_prefix(ae, plen, value[start:])
        _expect_length("seqno request", value, start + size)
        return SeqnoRequest(subnet, seqno, router_id, hop_count)
    raise MalformedPacket(f"unknown TLV type {tlv_type}")
