"""Link-local peer discovery (docs/wire.md §7): beacons to ff02::cafe on every qualifying
interface."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from pathlib import Path

from ..identity import RouterId
from ..wire.discovery import MULTICAST_GROUP, Beacon, is_link_local_source
from ..wire.errors import DecodeError
from .endpoint import Endpoint
from .tcp import set_firewall_mark

log = logging.getLogger(__name__)

BEACON_INTERVAL = 60.0
_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_POINTOPOINT = 0x10
_IFF_MULTICAST = 0x1000
_ARPHRD_NONE = 65534  # TUN devices
_GROUP = socket.inet_pton(socket.AF_INET6, MULTICAST_GROUP)


def qualifying_interfaces(allowed: list[str]) -> dict[int, str]:
    """ifindex -> name of interfaces that are up, multicast, not loopback/TUN/point-to-point,
    and have an fe80::/64 address (and are in ``allowed`` when it is not empty)."""
    found: dict[int, str] = {}
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or not parts[0].startswith("fe80000000000000"):
            continue
        index, name = int(parts[1], 16), parts[5]
        if allowed and name not in allowed:
            continue
        try:
            flags = int(Path(f"/sys/class/net/{name}/flags").read_text(), 16)
            kind = int(Path(f"/sys/class/net/{name}/type").read_text())
        except (OSError, ValueError):
            continue
        if not flags & _IFF_UP or not flags & _IFF_MULTICAST:
            continue
        if flags & (_IFF_LOOPBACK | _IFF_POINTOPOINT) or kind == _ARPHRD_NONE:
            continue
        found[index] = name
    return found


class Discovery:
    def __init__(
        self,
        router_id: RouterId,
        tcp_port: int,
        port: int,
        interfaces: list[str],
        on_peer: Callable[[Endpoint], object],
        *,
        proto: str = "tcp",
        firewall_mark: int | None = None,
    ) -> None:
        self._router_id = router_id
        self._beacon = Beacon(tcp_port, router_id).encode()
        self._port = port
        self._allowed = interfaces
        self._on_peer = on_peer
        self._proto = proto
        self._mark = firewall_mark
        self._sock: socket.socket | None = None
        self._joined: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self.ignored = 0

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            set_firewall_mark(sock, self._mark)
            sock.bind(("::", self._port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        loop = asyncio.get_running_loop()
        loop.add_reader(sock.fileno(), self._readable)
        self._task = loop.create_task(self._beacons())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    async def _beacons(self) -> None:
        while True:
            self._send_beacons()
            await asyncio.sleep(BEACON_INTERVAL)

    def _send_beacons(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for index, name in qualifying_interfaces(self._allowed).items():
            if index not in self._joined:
                try:
                    sock.setsockopt(
                        socket.IPPROTO_IPV6,
                        socket.IPV6_JOIN_GROUP,
                        _GROUP + struct.pack("@I", index),
                    )
                    self._joined.add(index)
                except OSError as exc:
                    log.debug("cannot join %s on %s: %s", MULTICAST_GROUP, name, exc)
                    continue
            try:
                sock.sendto(self._beacon, (MULTICAST_GROUP, self._port, 0, index))
            except OSError as exc:
                log.debug("beacon on %s failed: %s", name, exc)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        while True:
            try:
                data, addr = sock.recvfrom(128)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self.handle_datagram(data, addr)

    def handle_datagram(self, data: bytes, addr: tuple) -> None:
        host = str(addr[0]).split("%")[0]
        scope = int(addr[3]) if len(addr) > 3 else 0
        try:
            source = ipaddress.IPv6Address(host).packed
            beacon = Beacon.decode(data)
        except (ValueError, DecodeError):
            self.ignored += 1
            return
        if not is_link_local_source(source) or beacon.router_id == self._router_id:
            self.ignored += 1
            return
        host = f"{ipaddress.IPv6Address(source)}%{scope}"
        self._on_peer(Endpoint(self._proto, host, beacon.tcp_port))
