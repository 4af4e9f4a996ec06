"""The Linux TUN device: ``/dev/net/tun`` with ``TUNSETIFF`` and a non-blocking fd.

We open it with ``IFF_TUN | IFF_NO_PI | IFF_VNET_HDR`` but enable no transmit offloads: the
kernel still segments and checksums what it hands us, so every read is one ordinary IPv6 packet of
at most the MTU (1400) behind a 10-byte ``virtio_net_hdr``, exactly what may go on the wire
(docs/wire.md §9.2). Segmenting in Python would cost more than the syscalls it saves. The header
pays off on writes: consecutive TCP segments are joined into GSO super-packets (``gro.py``), so the
receiving stack runs once per run of segments instead of once per packet.

Closing the fd removes the (non-persistent) device, and with it its address and route.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Sequence
from typing import Final

from .errors import TunError
from .gro import VNET_HDR_LEN, coalesce, coalesce_delivered, delivered_buffer
from .netconf import configure

TUNSETIFF: Final = 0x400454CA
IFF_TUN: Final = 0x0001
IFF_NO_PI: Final = 0x1000
IFF_VNET_HDR: Final = 0x4000
IFNAMSIZ: Final = 16

DEFAULT_NAME: Final = "mycelium"
DEFAULT_MTU: Final = 1400
#: Packets the kernel may hold for us to read (the ring behind the TUN's transmit side; the
#: kernel default is 500). A TCP sender may keep up to ``tcp_limit_output_bytes`` (4 MB on current
#: kernels, 1 ms of its pacing rate in practice) below its socket; without segmentation offload
#: each 1400-byte segment takes one slot, so a bulk flow overflowed 500 slots whenever our reader
#: fell a burst behind: 1.5-3 % of its packets dropped, each one a TCP retransmit. 4096 slots hold
#: a whole such allowance. (The reference reads 64 KB super-packets with TSO instead, so its 500
#: slots hold far more; segmenting and checksumming them in Python costs more CPU than the one
#: read per packet it saves.)
TX_QUEUE_LEN: Final = 4096
#: The overlay prefix length configured on the interface (400::/7).
OVERLAY_PREFIX_LEN: Final = 7


class TunDevice:
    """An open, configured TUN interface. The runtime watches ``fileno()`` with add_reader."""

    def __init__(self, fd: int, name: str, mtu: int) -> None:
        self._fd = fd
        self.name = name
        self.mtu = mtu
        self._read_size = max(mtu, 1500) + 64 + VNET_HDR_LEN
        self.read_errors = 0
        self.write_errors = 0

    @classmethod
    def open(
        cls,
        name: str = DEFAULT_NAME,
        address: bytes | None = None,
        *,
        mtu: int = DEFAULT_MTU,
        prefix_len: int = OVERLAY_PREFIX_LEN,
        device: str = "/dev/net/tun",
    ) -> TunDevice:
        """Create the interface; with ``address`` also set MTU, ``address/prefix_len`` and up."""
        encoded = name.encode()
        if not encoded or len(encoded) >= IFNAMSIZ or b"/" in encoded or b"\0" in encoded:
            raise TunError(f"invalid interface name {name!r}", hint="use at most 15 characters")
        try:
            fd = os.open(device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise TunError(f"{device} does not exist (no TUN support)") from None
        except PermissionError:
            raise TunError(f"no permission to open {device}") from None
        except OSError as exc:
            raise TunError(f"cannot open {device}: {exc.strerror}") from None
        try:
            ifr = struct.pack("16sH22x", encoded, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR)
            try:
                result = fcntl.ioctl(fd, TUNSETIFF, ifr)
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    raise TunError(f"not allowed to create interface {name}") from None
                if exc.errno == errno.EBUSY:
                    raise TunError(
                        f"interface {name} already exists and is in use",
                        hint="pick another name with --tun-name, or stop the other node",
                    ) from None
                raise TunError(f"cannot create interface {name}: {exc.strerror}") from None
            actual = result[:IFNAMSIZ].rstrip(b"\0").decode()
            tun = cls(fd, actual, mtu)
            if address is not None:
                configure(actual, address, prefix_len, mtu, TX_QUEUE_LEN)
            return tun
        except BaseException:
            os.close(fd)
            raise

    def fileno(self) -> int:
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def read_batch(self, max_packets: int = 64) -> list[bytes]:
        """Packets available right now (reads until EAGAIN or ``max_packets``)."""
        packets: list[bytes] = []
        fd, size, read = self._fd, self._read_size, os.read
        for _ in range(max_packets):
            try:
                packets.append(read(fd, size)[VNET_HDR_LEN:])
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError:
                self.read_errors += 1
                break
        return packets

    def write_batch(
        self, packets: Sequence[bytes], delivered: Sequence[bytes] = (), hops: Sequence[int] = ()
    ) -> int:
        """Write the packets, then the decrypted ones (plaintexts behind a 4-byte user header,
        with the hop limit each must carry), TCP runs joined; returns how many writes the kernel
        took (a failed write drops its packet or run)."""
        fd, write = self._fd, os.write
        written = 0
        if packets or len(delivered) != 1:
            buffers = coalesce(packets) if packets else []
            if delivered:
                buffers += coalesce_delivered(delivered, hops)
        else:  # one decrypted packet (a ping after a pause): no run to look for
            buffers = [delivered_buffer(delivered[0], hops[0])]
        for buffer in buffers:
            try:
                write(fd, buffer)
                written += 1
            except OSError:  # EAGAIN (queue full), EINVAL (malformed): drop this buffer
                self.write_errors += 1
        return written

    def close(self) -> None:
        """Close the fd; the kernel removes the interface, its address and its route."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
