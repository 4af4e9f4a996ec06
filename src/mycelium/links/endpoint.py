"""Peer endpoints: ``<proto>://<literal socket address>`` (docs/wire.md §6.1).

Host names are refused and IPv6 scope ids must be numeric, as in the reference.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

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
        host, port_n = _split_socket_address(address, text)
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
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def with_proto(self, proto: str) -> Endpoint:
        return Endpoint(proto, self.host, self.port)

    def __str__(self) -> str:
        return f"{self.proto}://{self.socket_address}"


def _split_socket_address(address: str, text: str) -> tuple[str, int]:
    if address.startswith("["):
        host, sep, rest = address[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise EndpointError(f"malformed IPv6 socket address in {text!r}")
        port_text = rest[1:]
        ip_text, _, scope = host.partition("%")
        if scope and not scope.isdigit():
            raise EndpointError(f"IPv6 scope id must be numeric in {text!r}")
        try:
            ip = ipaddress.IPv6Address(ip_text)
        except ValueError:
            raise EndpointError(f"{ip_text!r} is not an IPv6 address in {text!r}") from None
        host = f"{ip}%{int(scope)}" if scope else str(ip)
    else:
        host, sep, port_text = address.rpartition(":")
        if not sep:
            raise EndpointError(f"endpoint {text!r} has no port")
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            raise EndpointError(
                f"{host!r} is not a literal IP address in {text!r} (host names are not accepted)"
            ) from None
    if not port_text.isdigit() or not 0 < int(port_text) <= 0xFFFF:
        raise EndpointError(f"bad port {port_text!r} in endpoint {text!r}")
    return host, int(port_text)


def socket_text(host: str, port: int) -> str:
    """Format a (host, port) pair from a socket the way the reference prints SocketAddr."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"
