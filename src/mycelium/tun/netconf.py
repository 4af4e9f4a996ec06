"""Interface configuration over netlink (pyroute2): MTU, queue length, the overlay address, up.

The address is the node's full overlay address with prefix length 7, so the kernel derives the
only route we need, ``400::/7 dev <tun>`` (docs/wire.md §9.1). Nothing else is installed.
"""

from __future__ import annotations

import ipaddress

from .errors import TunError

#: IFA_F_NODAD: a TUN has no neighbours to detect duplicates with; use the address at once.
IFA_F_NODAD = 0x02


def configure(name: str, address: bytes, prefix_len: int, mtu: int, queue_len: int) -> int:
    """Set MTU and transmit queue length, add ``address/prefix_len`` and bring ``name`` up;
    returns the interface index."""
    from pyroute2 import IPRoute  # imported lazily: only a node with a TUN needs netlink
    from pyroute2.netlink.exceptions import NetlinkError

    text = str(ipaddress.IPv6Address(address))
    try:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                raise TunError(f"interface {name} vanished while configuring it", hint="")
            index = int(found[0])
            ipr.link("set", index=index, mtu=mtu, txqlen=queue_len)
            ipr.addr("add", index=index, address=text, prefixlen=prefix_len, flags=IFA_F_NODAD)
            ipr.link("set", index=index, state="up")
            return index
    except NetlinkError as exc:
        raise TunError(f"cannot configure interface {name}: {exc}") from exc
