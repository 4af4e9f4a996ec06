"""How many inbound connections the node holds, from whom, and for how long before they speak.

Every accepted connection costs a file descriptor, and every admitted peer costs the router work
(Hellos, IHUs, Updates). So, per listener:

- at most ``MAX_INBOUND`` inbound connections at once (those still in a handshake included), and
  never more than the file-descriptor limit leaves room for (the API, the TUN device and the
  node's own dials need descriptors too);
- at most ``MAX_PER_SOURCE`` from one source: an IPv4 address, or an IPv6 /64 (one host easily
  owns a whole /64); link-local and loopback addresses count one by one;
- an inbound connection becomes a peer only once a packet from it decodes; one that sends
  nothing valid for ``ADMISSION_TIMEOUT`` seconds is closed.

Connections over a limit are closed at once and counted (docs/wire.md §6.2).
``raise_nofile_limit`` lifts the process's soft descriptor limit to its hard limit (the daemon
calls it at start).
"""

from __future__ import annotations

import ipaddress
import logging
import resource
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Inbound connections held at once per listener (the descriptor limit may lower it).
MAX_INBOUND = 1024
#: Inbound connections held at once from one source address (an IPv6 /64).
MAX_PER_SOURCE = 8
#: Seconds an inbound connection may stay silent (or undecodable) before it is closed.
ADMISSION_TIMEOUT = 10.0
#: Descriptors kept for everything else: at least this many, or a quarter of the limit.
RESERVED_FDS = 64

Release = Callable[[], None]


def source_key(host: str) -> str:
    """What the per-source limit counts by: an IPv6 /64, else the address itself."""
    address = host.split("%")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return host  # a vsock CID
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if not (ip.is_link_local or ip.is_loopback):
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return host


def nofile_limit() -> int:
    """The process's soft limit on open file descriptors."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def raise_nofile_limit() -> int:
    """Lift the soft descriptor limit to the hard one (a root daemon's default soft limit is
    often 1024 or lower); returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return nofile_limit()


def inbound_budget(fd_limit: int, wanted: int | None = None) -> int:
    """How many inbound connections (``MAX_INBOUND`` unless ``wanted``) a descriptor limit
    leaves room for."""
    reserved = max(RESERVED_FDS, fd_limit // 4)
    return max(1, min(MAX_INBOUND if wanted is None else wanted, fd_limit - reserved))


class InboundLimits:
    """Counts inbound connections per listener; ``acquire`` admits or refuses one."""

    def __init__(self, total: int | None = None, per_source: int | None = None) -> None:
        """Defaults: ``MAX_INBOUND`` within the descriptor budget, and ``MAX_PER_SOURCE``."""
        self.total = inbound_budget(nofile_limit()) if total is None else total
        self.per_source = MAX_PER_SOURCE if per_source is None else per_source
        self.held = 0
        self._by_source: dict[str, int] = {}
        #: Connections refused because the listener was full, or their source was.
        self.refused_total = 0
        self.refused_per_source = 0

    def acquire(self, host: str) -> Release | None:
        """A release function for a connection from ``host``, or None when it must be refused."""
        if self.held >= self.total:
            self.refused_total += 1
            return None
        key = source_key(host)
        count = self._by_source.get(key, 0)
        if count >= self.per_source:
            self.refused_per_source += 1
            return None
        self._by_source[key] = count + 1
        self.held += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.held -= 1
            left = self._by_source[key] - 1
            if left:
                self._by_source[key] = left
            else:
                del self._by_source[key]

        return release
