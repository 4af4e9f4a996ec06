"""IPv6 subnets as compact, hashable values.

Routing keys everything by subnet, so a subnet is a (network int, prefix length) tuple: cheap to
hash and compare, and host bits are always masked so equal networks are equal values.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

_ALL = (1 << 128) - 1


def _mask(prefix_len: int) -> int:
    return (_ALL << (128 - prefix_len)) & _ALL


class Subnet(NamedTuple):
    network: int
    prefix_len: int

    @classmethod
    def of(cls, address: bytes | int, prefix_len: int) -> Subnet:
        """The subnet of the given length containing ``address`` (host bits cleared)."""
        if not 0 <= prefix_len <= 128:
            raise ValueError(f"prefix length {prefix_len} out of range")
        value = int.from_bytes(address, "big") if isinstance(address, bytes) else address
        return cls(value & _mask(prefix_len), prefix_len)

    @classmethod
    def parse(cls, text: str) -> Subnet:
        net = ipaddress.IPv6Network(text, strict=False)
        return cls(int(net.network_address), net.prefixlen)

    def contains(self, address: bytes | int) -> bool:
        value = int.from_bytes(address, "big") if isinstance(address, bytes) else address
        return value & _mask(self.prefix_len) == self.network

    def contains_subnet(self, other: Subnet) -> bool:
        return other.prefix_len >= self.prefix_len and self.contains(other.network)

    @property
    def network_bytes(self) -> bytes:
        return self.network.to_bytes(16, "big")

    def prefix_bytes(self) -> bytes:
        """The first ceil(plen/8) bytes of the network, as carried in TLVs."""
        return self.network_bytes[: (self.prefix_len + 7) // 8]

    def __str__(self) -> str:
        return f"{ipaddress.IPv6Address(self.network)}/{self.prefix_len}"


#: The global overlay range every derived address falls in.
GLOBAL_SUBNET = Subnet.parse("400::/7")
