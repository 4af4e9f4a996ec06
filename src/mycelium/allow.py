"""Which sources may reach this node's TUN and message bus (``--allow-from``, docs/wire.md §5.3).

Empty (the default), everyone may, and the data plane never calls in here. Otherwise a data
packet for our /64 (IP traffic, messages, out-of-band ICMP) whose source is outside every
allowed subnet is dropped and counted before it is decrypted; forwarding for others is
unaffected. Checking the source before decryption is sound: a packet is decrypted with the key
of the route that covers its source, so a forged source fails to decrypt anyway.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from .identity import node_subnet, parse_public_key
from .subnet import GLOBAL_SUBNET, Subnet


def parse_rule(text: str) -> Subnet:
    """A public key (64 hex characters: that node's /64), an overlay address (its node's /64)
    or an overlay subnet such as ``5c4:c176::/32``; ValueError otherwise."""
    text = text.strip()
    if len(text) == 64 and ":" not in text:
        return node_subnet(parse_public_key(text))
    try:
        if "/" in text:
            subnet = Subnet.parse(text)
        else:
            subnet = Subnet.of(ipaddress.IPv6Address(text).packed, 64)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a public key (64 hex characters), an overlay address nor an "
            "overlay subnet"
        ) from None
    if not GLOBAL_SUBNET.contains_subnet(subnet):
        raise ValueError(f"{text!r} is outside the overlay range {GLOBAL_SUBNET}")
    return subnet


class AllowList:
    """The allowed subnets; ``allows(src)`` is a set lookup for the usual /64 rules."""

    def __init__(self, subnets: Iterable[Subnet], own: Subnet) -> None:
        rules = {*subnets, own}  # our own packets (looped back messages) always pass
        self.rules = tuple(sorted(rules))
        self._prefixes = frozenset(s.network_bytes[:8] for s in rules if s.prefix_len == 64)
        self._other = tuple(s for s in rules if s.prefix_len != 64)
        #: Packets dropped because their source is not allowed.
        self.dropped = 0

    def allows(self, src: bytes) -> bool:
        if src[:8] in self._prefixes or any(s.contains(src) for s in self._other):
            return True
        self.dropped += 1
        return False
