"""ICMPv6 echo prober for many network namespaces at once (run as a script, as root).

One process holds a raw ICMPv6 socket in each namespace (opened there through setns) and sends an
echo request for every (source, destination) pair every ``interval`` seconds, the pairs spread
evenly over the interval. The kernel answers the requests; the destination's socket sees a copy
of each, so each direction of a pair can be told apart. One process rather than one per
namespace: on a loaded 2-core machine thirty Python interpreters would compete with the nodes
being measured.

It appends one line per event to the output file, with wall-clock times (every namespace shares
the clock), for ``dynamics.Probes`` to read while it runs:

    s TIME SRC DST SEQ           echo request sent
    f TIME SRC DST SEQ ERRNO     echo request could not be sent (counts as unanswered)
    q TIME SRC DST SEQ HOPLIMIT  echo request arrived at its destination (one way)
    r TIME SRC DST SEQ HOPLIMIT  echo reply received (HOPLIMIT as it arrived)
    x TIME SRC DST SEQ TYPE CODE an ICMPv6 error quoting one of our requests (3: time exceeded)

    python icmp_prober.py OUT INTERVAL '[["ns-name", index, [[dst, "addr"], ...]], ...]'

(every namespace a probe goes to is listed, with an empty list if it sends none).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import time

CLONE_NEWNET = 0x40000000
ICMP6_FILTER = 1  # <netinet/icmp6.h>; not exported by the socket module
ECHO_REQUEST, ECHO_REPLY = 128, 129
ERRORS = (1, 3)  # destination unreachable, time exceeded
MAGIC = b"dyn1"
PAYLOAD = struct.Struct("!4sHHI")  # magic, source index, destination index, sequence number
IDENT = 0xD15E
FLUSH_EVERY = 0.3


def icmp6_filter(passing: tuple[int, ...]) -> bytes:
    """The kernel's filter bitmap: a set bit blocks that ICMPv6 type."""
    words = [0xFFFFFFFF] * 8
    for kind in passing:
        words[kind >> 5] &= ~(1 << (kind & 31)) & 0xFFFFFFFF
    return struct.pack("8I", *words)


def open_in(ns: str) -> socket.socket:
    """A raw ICMPv6 socket living in network namespace ``ns`` (it stays there afterwards)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)
        os.close(target)
    passing = (ECHO_REQUEST, ECHO_REPLY, *ERRORS)
    sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(passing))
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    sock.setblocking(False)
    return sock


def ours(payload: bytes) -> tuple[int, int, int] | None:
    if len(payload) < PAYLOAD.size:
        return None
    magic, src, dst, seq = PAYLOAD.unpack_from(payload)
    return (src, dst, seq) if magic == MAGIC else None


def parse(data: bytes, ancillary: list[tuple[int, int, bytes]]) -> str | None:
    """The log line for one received ICMPv6 message, or None when it is not about our probes."""
    if len(data) < 8:
        return None
    kind, code = data[0], data[1]
    now = time.time()
    if kind in (ECHO_REQUEST, ECHO_REPLY):
        probe = ours(data[8:])
        hop = next((int.from_bytes(d[:4], sys.byteorder) for _, _, d in ancillary), -1)
        tag = "q" if kind == ECHO_REQUEST else "r"
        return (
            None if probe is None else f"{tag} {now:.4f} {probe[0]} {probe[1]} {probe[2]} {hop}\n"
        )
    # An error quotes the offending packet: IPv6 header (40 bytes), then our echo request.
    quoted = data[8:]
    if len(quoted) < 48 or quoted[6] != socket.IPPROTO_ICMPV6 or quoted[40] != ECHO_REQUEST:
        return None
    probe = ours(quoted[48:])
    if probe is None:
        return None
    return f"x {now:.4f} {probe[0]} {probe[1]} {probe[2]} {kind} {code}\n"


def main() -> None:
    out_path, interval, spec = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
    sockets: dict[int, socket.socket] = {src: open_in(ns) for ns, src, _ in spec}
    pairs = [(src, dst, addr) for _, src, dsts in spec for dst, addr in dsts]
    if not pairs:
        raise SystemExit("nothing to probe")
    seqs = dict.fromkeys(((s, d) for s, d, _ in pairs), 0)
    by_fd = {sock.fileno(): sock for sock in sockets.values()}
    out = open(out_path, "a")  # noqa: SIM115 - flushed on a timer, closed at exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    step = interval / max(len(pairs), 1)
    print("ready", flush=True)
    next_send = next_flush = time.monotonic()
    k = 0
    try:
        while True:
            now = time.monotonic()
            readable, _, _ = select.select(list(by_fd), [], [], max(0.0, next_send - now))
            for fd in readable:
                while True:
                    try:
                        data, anc, _, _ = by_fd[fd].recvmsg(2048, socket.CMSG_SPACE(4))
                    except BlockingIOError:
                        break
                    line = parse(data, anc)
                    if line:
                        out.write(line)
            now = time.monotonic()
            if now - next_send > interval:  # descheduled: skip the backlog, never burst
                next_send = now
            while now >= next_send:
                src, dst, addr = pairs[k % len(pairs)]
                k += 1
                seq = seqs[src, dst]
                seqs[src, dst] = seq + 1
                body = PAYLOAD.pack(MAGIC, src, dst, seq) + bytes(4)
                request = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, IDENT, seq & 0xFFFF) + body
                stamp = time.time()
                try:
                    sockets[src].sendto(request, (addr, 0))
                    out.write(f"s {stamp:.4f} {src} {dst} {seq}\n")
                except OSError as e:
                    out.write(f"f {stamp:.4f} {src} {dst} {seq} {e.errno}\n")
                next_send += step
            if now >= next_flush:
                out.flush()
                next_flush = now + FLUSH_EVERY
    finally:
        out.flush()
        out.close()


if __name__ == "__main__":
    main()
