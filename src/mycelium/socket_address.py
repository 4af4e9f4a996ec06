"""Socket addresses (``1.2.3.4:5``, ``[v6]:5``, ``[v6%scope]:5``) as the reference's Rust
``SocketAddr`` reads and prints them: literal IPs only, numeric scope ids, ports 0 to 65535.

The one parser for peer endpoints (docs/wire.md §6.1), API listen addresses, proxy targets and
the CLI.
"""

from __future__ import annotations

import ipaddress


def _ipv6_text(text: str) -> str:
    """Rust's ``Ipv6Addr`` display, which keeps an IPv4-mapped tail dotted."""
    address = ipaddress.IPv6Address(text)
    mapped = address.ipv4_mapped
    return f"::ffff:{mapped}" if mapped is not None else str(address)


class SocketAddressError(ValueError):
    """Why a text is not a socket address; ``reason`` reads after the text (``has no port``)."""

    def __init__(self, text: object, reason: str) -> None:
        super().__init__(f"{text!r} {reason}")
        self.reason = reason


def parse_socket_address(text: object) -> tuple[str, int]:
    """(host, port): the host as Rust shows it (an IPv6 scope as ``%N``, scope 0 dropped as Rust
    drops it). SocketAddressError, saying why, for anything else, including non-strings."""
    if not isinstance(text, str) or not text.isascii():
        raise SocketAddressError(text, "is not a socket address")
    host, sep, port = text.rpartition(":")
    if not sep:
        raise SocketAddressError(text, "has no port (IP:PORT or [IPv6]:PORT)")
    if not host.startswith("[") and ":" in host:
        raise SocketAddressError(text, "has an IPv6 address without brackets ([IPv6]:PORT)")
    if not port.isdigit() or int(port) > 0xFFFF:
        raise SocketAddressError(text, f"has a bad port {port!r}")
    if host.startswith("[") and host.endswith("]"):
        ip, percent, scope = host[1:-1].partition("%")
        if percent and not (scope.isdigit() and int(scope) <= 0xFFFFFFFF):
            raise SocketAddressError(text, "has an IPv6 scope that is not a number")
        try:
            shown = _ipv6_text(ip)  # ip holds no "%" here: Python would take a named scope
        except ValueError:
            raise SocketAddressError(text, f"has {ip!r}, not an IPv6 address") from None
        return (f"{shown}%{int(scope)}" if percent and int(scope) else shown), int(port)
    try:
        return str(ipaddress.IPv4Address(host)), int(port)
    except ValueError:
        raise SocketAddressError(
            text, "has no literal IP address (host names are not accepted; IPv6 goes in brackets)"
        ) from None


def socket_text(host: str, port: int) -> str:
    """Rust's ``SocketAddr`` display: ``[v6]:port`` or ``v4:port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def lookup_host(host: str) -> str | bytes:
    """``host`` as ``getaddrinfo`` should get it: ASCII text (a literal address, a plain name)
    as bytes, since a str always loads the IDNA codec and its Unicode tables to encode it."""
    return host.encode("ascii") if host.isascii() else host
