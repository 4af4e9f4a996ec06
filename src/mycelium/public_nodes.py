"""The public nodes the reference's operators host (its README, "Hosted public nodes").

Anyone may peer with them to join the global network (``--public-peers``), and the DNS forwarder
uses their resolvers (docs/extras.md §2.2). They all listen on TCP and QUIC port 9651, over IPv4
and IPv6, and are connected to each other.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from .links.endpoint import Endpoint


class PublicNode(NamedTuple):
    region: str
    ipv4: str
    ipv6: str
    #: Its overlay address (the DNS forwarder's upstream).
    overlay: str


PORT = 9651

# region IPv4           IPv6                              overlay address
_TABLE = """
DE      188.40.132.242  2a01:4f8:221:1e0b::2              54b:83ab:6cb5:7b38:44ae:cd14:53f3:a907
DE      136.243.47.186  2a01:4f8:212:fa6::2               40a:152c:b85b:9646:5b71:d03a:eb27:2462
BE      185.69.166.7    2a02:1802:5e:0:ec4:7aff:fe51:e80d 597:a4ef:806:b09:6650:cbbf:1b68:cc94
BE      185.69.166.8    2a02:1802:5e:0:ec4:7aff:fe51:e36b 549:8bce:fa45:e001:cbf8:f2e2:2da6:a67c
FI      65.21.231.58    2a01:4f9:6a:1dc5::2               410:2778:53bf:6f41:af28:1b60:d7c0:707a
FI      65.109.18.113   2a01:4f9:5a:1042::2               488:74ac:8a31:277b:9683:c8e:e14f:79a7
US-EAST 209.159.146.190 2604:a00:50:17b:9e6b:ff:fe1f:e054 4ab:a385:5a4e:ef8f:92e0:1605:7cb6:24b2
US-WEST 5.78.122.16     2a01:4ff:1f0:8859::1              4de:b695:3859:8234:d04c:5de6:8097:c27c
SG      5.223.43.251    2a01:4ff:2f0:3621::1              5eb:c711:f9ab:eb24:ff26:e392:a115:1c0e
IND     142.93.217.194  2400:6180:100:d0::841:2001        445:465:fe81:1e2b:5420:a029:6b0:9f61
"""

#: In the reference's order (also its DNS forwarder's order of preference).
NODES = tuple(PublicNode(*line.split()) for line in _TABLE.strip().splitlines())

#: The overlay addresses, packed.
OVERLAY_ADDRESSES = tuple(ipaddress.IPv6Address(n.overlay).packed for n in NODES)


def endpoints() -> list[Endpoint]:
    """Every node over TCP, on IPv4 and on IPv6 (a family the host lacks fails at once)."""
    return [Endpoint("tcp", host, PORT) for node in NODES for host in (node.ipv4, node.ipv6)]
