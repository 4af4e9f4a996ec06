"""Interface configuration with the classic ``SIOCSIF*`` ioctls: MTU, queue length, the overlay
address, link up (as the reference does it).

The address is the node's full overlay address with prefix length 7, so the kernel derives the
only route we need, ``400::/7 dev <tun>`` (docs/wire.md §9.1). Nothing else is installed. A TUN
device is ``NOARP``, so the kernel skips duplicate address detection and the address is usable at
once.

Plain ioctls on a throwaway socket need nothing beyond the standard library; a netlink library
would stay in the node's memory for the rest of its life to be used once, at start.
"""

from __future__ import annotations

import fcntl
import socket
import struct

from .errors import TunError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCSIFADDR = 0x8916
SIOCSIFMTU = 0x8922
SIOCGIFINDEX = 0x8933
SIOCSIFTXQLEN = 0x8943
IFF_UP = 0x1
#: ``struct ifreq``: the name, then a 24-byte union (an int or a short is all we use).
_IFREQ_INT = struct.Struct("16si20x")
_IFREQ_SHORT = struct.Struct("16sH22x")
#: ``struct in6_ifreq``: address, prefix length, interface index.
_IN6_IFREQ = struct.Struct("16sIi")


def configure(name: str, address: bytes, prefix_len: int, mtu: int, queue_len: int) -> int:
    """Set MTU and transmit queue length, add ``address/prefix_len`` and bring ``name`` up;
    returns the interface index."""
    encoded = name.encode()
    step = "open a configuration socket"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            fd = sock.fileno()
            step = "find it"
            index = _IFREQ_INT.unpack(fcntl.ioctl(fd, SIOCGIFINDEX, _IFREQ_INT.pack(encoded, 0)))[1]
            step = f"set MTU {mtu}"
            fcntl.ioctl(fd, SIOCSIFMTU, _IFREQ_INT.pack(encoded, mtu))
            step = f"set queue length {queue_len}"
            fcntl.ioctl(fd, SIOCSIFTXQLEN, _IFREQ_INT.pack(encoded, queue_len))
            step = "add its address"
            fcntl.ioctl(fd, SIOCSIFADDR, _IN6_IFREQ.pack(address, prefix_len, index))
            step = "bring it up"
            flags = _IFREQ_SHORT.unpack(
                fcntl.ioctl(fd, SIOCGIFFLAGS, _IFREQ_SHORT.pack(encoded, 0))
            )[1]
            fcntl.ioctl(fd, SIOCSIFFLAGS, _IFREQ_SHORT.pack(encoded, flags | IFF_UP))
            return int(index)
    except OSError as exc:
        raise TunError(f"cannot configure interface {name} ({step}): {exc.strerror}") from exc
