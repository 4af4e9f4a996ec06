"""Peer endpoints: ``<proto>://<literal socket address>`` (docs/wire.md §6.1).

Host names are refused and IPv6 scope ids must be numeric, as in the reference.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..socket_address import SocketAddressError, parse_socket_address
from ..socket_address import socket_text as socket_text  # links/tcp.py and quic.py import it here

PROTOCOLS = ("tcp", "quic", "tls", "vsock")


class EndpointError(ValueError):
    """An endpoint string that the reference would refuse too."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    proto: str
    host: str  # literal IP (IPv4 or IPv6 without brackets, scope as "%N"), or the vsock CID
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        proto, sep, address = text.strip().partition("://")
        if not sep:
            raise EndpointError(f"endpoint {text!r} has no protocol (expected proto://addr:port)")
        proto = proto.lower()
        if proto not in PROTOCOLS:
            raise EndpointError(f"unknown protocol {proto!r} in endpoint {text!r}")
        if proto == "vsock":
            cid, _, port = address.partition(":")
            if not (cid.isdigit() and port.isdigit()):
                raise EndpointError(f"vsock endpoint {text!r} must be vsock://CID:PORT")
            cid_n, port_n = int(cid), int(port)
            if cid_n > 0xFFFFFFFF or port_n > 0xFFFFFFFF:
                raise EndpointError(f"vsock CID and port are 32-bit numbers in {text!r}")
            return cls(proto, str(cid_n), port_n)
        try:
            host, port_n = parse_socket_address(address)
        except SocketAddressError as exc:
            raise EndpointError(f"endpoint {text!r} {exc.reason}") from None
        if port_n == 0:
            raise EndpointError(f"endpoint {text!r} has port 0")
        return cls(proto, host, port_n)

    @property
    def is_ipv4(self) -> bool:
        if self.proto == "vsock":
            return False
        address = ipaddress.ip_address(self.host.split("%")[0])
        return address.version == 4 or (address.version == 6 and address.ipv4_mapped is not None)

    @property
    def socket_address(self) -> str:
        """``1.2.3.4:9651`` or ``[2001:db8::1]:9651`` (what the API shows)."""
        if self.proto == "vsock":
            return f"{self.host}:{self.port}"
        return socket_text(self.host, self.port)

    def with_proto(self, proto: str) -> Endpoint:
        return Endpoint(proto, self.host, self.port)

    def __str__(self) -> str:
        return f"{self.proto}://{self.socket_address}"
