"""Peer endpoints: ``<proto>://<address>:<port>`` (docs/wire.md §6.1).

The address is a literal IP (IPv6 in brackets, a numeric scope id allowed) as the reference
accepts it, or, our extension, a DNS host name that the peer manager resolves before each
connection attempt. A string without ``proto://`` is refused with a hint, as the reference
refuses it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..socket_address import SocketAddressError, parse_socket_address
from ..socket_address import socket_text as socket_text  # links/tcp.py and quic.py import it here

PROTOCOLS = ("tcp", "quic", "tls", "vsock")

#: One DNS label: letters, digits and inner hyphens, 1 to 63 characters.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


class EndpointError(ValueError):
    """An endpoint string that cannot name a peer."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    proto: str
    #: A literal IP (IPv4, or IPv6 without brackets with its scope as "%N"), a lower-case host
    #: name, or the vsock CID.
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        proto, sep, address = text.strip().partition("://")
        if not sep:
            hint = f" (did you mean tcp://{text.strip()}?)" if ":" in text else ""
            raise EndpointError(
                f"endpoint {text!r} has no protocol: expected tcp://, quic://, tls:// or "
                f"vsock:// before the address{hint}"
            )
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
            named = _named_address(address, text)
            if named is None:
                raise EndpointError(f"endpoint {text!r} {exc.reason}") from None
            host, port_n = named
        if port_n == 0:
            raise EndpointError(f"endpoint {text!r} has port 0")
        return cls(proto, host, port_n)

    @property
    def is_hostname(self) -> bool:
        """A DNS name, resolved before every connection attempt (not a literal address)."""
        if self.proto == "vsock":
            return False
        try:
            ipaddress.ip_address(self.host.split("%")[0])
        except ValueError:
            return True
        return False

    @property
    def is_ipv4(self) -> bool:
        if self.is_hostname or self.proto == "vsock":
            return False
        address = ipaddress.ip_address(self.host.split("%")[0])
        return address.version == 4 or (address.version == 6 and address.ipv4_mapped is not None)

    @property
    def socket_address(self) -> str:
        """``1.2.3.4:9651``, ``[2001:db8::1]:9651`` or ``example.org:9651`` (what the API
        shows)."""
        return socket_text(self.host, self.port)

    def with_proto(self, proto: str) -> Endpoint:
        return Endpoint(proto, self.host, self.port)

    def with_host(self, host: str) -> Endpoint:
        """The same protocol and port at another address (a host name's resolved IP)."""
        return Endpoint(self.proto, host, self.port)

    def __str__(self) -> str:
        return f"{self.proto}://{self.socket_address}"


def _named_address(address: str, text: str) -> tuple[str, int] | None:
    """(host name, port) when ``address`` is ``name:port``; None when it is no host name at all
    (the socket address parser's reason then stands)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or ":" in host or host.startswith("[") or not port.isdigit():
        return None
    if int(port) > 0xFFFF:
        return None
    return _hostname(host, text), int(port)


def _hostname(name: str, text: str) -> str:
    """A DNS host name in lower case (a trailing dot dropped); EndpointError otherwise."""
    name = name.lower().removesuffix(".")
    labels = name.split(".")
    if (
        len(name) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()  # "1.2.3" or "300.1.1.1": a mistyped IPv4 address
    ):
        raise EndpointError(f"{name!r} is neither an IP address nor a host name in {text!r}")
    return name
