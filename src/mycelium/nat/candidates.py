"""Where a node can be reached for a direct link: its candidates, and what its NAT does.

A candidate is a UDP transport address of the node's QUIC socket as someone else should use it:
a *host* candidate is an address of one of its interfaces (two nodes behind the same NAT reach
each other there), a *reflexive* one is the public address and port its NAT maps the socket to,
as a STUN server saw it (docs/nat.md).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum


class CandidateKind(IntEnum):
    HOST = 0
    REFLEXIVE = 1


class NatType(IntEnum):
    """How the NAT maps our socket, from two STUN servers' answers (RFC 4787's terms)."""

    #: Not known yet: no answer, or only one server asked.
    UNKNOWN = 0
    #: Both servers saw the same public address and port: others reach us on that mapping.
    ENDPOINT_INDEPENDENT = 1
    #: Each destination gets its own public port: a reflexive candidate is of no use to peers.
    SYMMETRIC = 2
    #: A server saw our socket's own address: nothing translates it.
    OPEN = 3

    @property
    def label(self) -> str:
        """The API's spelling."""
        return _LABELS[self]


_LABELS = {
    NatType.UNKNOWN: "unknown",
    NatType.ENDPOINT_INDEPENDENT: "endpointIndependent",
    NatType.SYMMETRIC: "symmetric",
    NatType.OPEN: "open",
}


def normal_host(host: str) -> str:
    """One text per address: no brackets or scope, an IPv4-mapped IPv6 address as IPv4.

    Raises ``ValueError`` for anything that is not a literal IP address."""
    address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def usable_address(host: str) -> bool:
    """Whether another node could send to this address: not unspecified, loopback, link-local
    (no scope travels with a candidate), multicast, or inside the overlay's own 400::/7."""
    address = ipaddress.ip_address(host)
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        return False
    if address.is_link_local:
        return False
    return not (address.version == 6 and address.packed[0] & 0xFE == 0x04)


@dataclass(frozen=True, slots=True)
class Candidate:
    kind: CandidateKind
    host: str
    port: int

    def __post_init__(self) -> None:
        if not 0 < self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} out of range")

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.kind.name.lower()} {host}:{self.port}"
