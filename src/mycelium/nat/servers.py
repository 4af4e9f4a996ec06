"""Which STUN servers a node asks for its public address (``--stun-server``, docs/nat.md).

None by default: a node contacts no third party unless told to. ``--stun-server default`` asks
the public servers below (two operators, so that the mapping can be classified).
"""

from __future__ import annotations

import ipaddress

#: Well-known public STUN servers, used only when configured as ``default``.
DEFAULT_STUN_SERVERS = (
    "stun.l.google.com:19302",
    "stun1.l.google.com:19302",
    "stun.cloudflare.com:3478",
)


class StunServerError(ValueError):
    """A ``--stun-server`` value that is not ``HOST:PORT``."""


def parse_stun_server(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (a name, an IPv4 address or a bracketed IPv6 address) as (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise StunServerError(f"{text!r}: an IPv6 address goes in brackets, [addr]:port")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise StunServerError(f"{text!r}: {host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise StunServerError(f"{text!r} is not HOST:PORT")
        if not all(part and len(part) <= 63 for part in host.rstrip(".").split(".")):
            raise StunServerError(f"{text!r}: {host!r} is not a host name or address")
    if not port_text.isdigit() or not 0 < int(port_text) <= 0xFFFF:
        raise StunServerError(f"{text!r}: bad port {port_text!r}")
    return host, int(port_text)


def check_stun_server(text: str) -> str:
    """A ``--stun-server`` value as given, once known to be ``default`` or ``HOST:PORT``."""
    if text.strip() != "default":
        parse_stun_server(text)
    return text


def stun_servers(values: list[str] | tuple[str, ...]) -> list[tuple[str, int]]:
    """The configured values, ``default`` standing for DEFAULT_STUN_SERVERS."""
    servers: list[tuple[str, int]] = []
    for value in values:
        texts = DEFAULT_STUN_SERVERS if value.strip() == "default" else (value,)
        servers.extend(parse_stun_server(text) for text in texts)
    return list(dict.fromkeys(servers))
