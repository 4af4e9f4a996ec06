"""The sans-I/O data plane: TUN packets in, encrypted frames out, and the reverse.

Follows the reference's ``data.rs`` and ``Router::route_packet`` (docs/wire.md §5, §9.3;
docs/routing.md §7). Every node that handles a data packet (origin, transit, destination) runs
the same hop-limit step: below 2 it is answered with an ICMP Time Exceeded, otherwise
decremented.

The hot paths (``from_tun`` and ``from_link`` with a known route) raise nothing and log nothing:
everything unusual is a counted drop. Outputs are drained with the ``take_*`` methods.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic

from ..allow import AllowList
from ..crypto import MIN_SEALED_SIZE, NO_AAD, NONCE_SIZE, CryptoError, KeyCache
from ..identity import Identity
from ..qh3_native import AuthenticationFailed
from ..routing import Forward, Local, Queue
from ..routing.decisions import N, RouteLookup
from ..routing.limits import TokenBucket
from ..subnet import Subnet
from ..wire.packet import DATA_OUTER, MAX_DATA_BODY, DataPacket, data_packet
from . import icmp
from .ciphers import Opener, Sealer
from .counters import Counters
from .kept import KeptDecisions
from .nonces import NoncePool
from .packet_stats import PacketStats
from .queue import PacketQueue, new_incoming_queue, new_route_queue
from .replay import ReplayWindow, Window

#: Largest inner packet we put on the wire or accept from the TUN (its MTU, docs/wire.md §4.6).
MAX_INNER_PACKET: Final = 1400
#: Hop limit of message and out-of-band ICMP packets we originate.
DEFAULT_HOP_LIMIT: Final = 64
#: Encrypted bodies longer than this are not quoted in an out-of-band ICMP (1280 - 48).
MAX_OOB_QUOTE: Final = icmp.MAX_QUOTE

_HDR_L3: Final = b"\x01\x00\x00\x00"
_HDR_MESSAGE: Final = b"\x01\x01\x00\x00"
_HDR_ICMP: Final = b"\x01\x02\x00\x00"
_USER_VERSION: Final = 1
_TYPE_L3: Final = 0
_TYPE_MESSAGE: Final = 1
_TYPE_ICMP: Final = 2
#: A sealed body is the plaintext (4-byte user header + packet) + 16-byte tag + 12-byte nonce.
_SEAL_OVERHEAD: Final = MIN_SEALED_SIZE
_HOP_BYTE: Final = [bytes((i,)) for i in range(256)]

#: A packet we originate, parked until its route appears: (user header, payload, src, dst, hop).
_Unsealed = tuple[bytes, bytes, bytes, bytes, int]


class DataPlane(Generic[N]):
    """Encrypt, route, forward and deliver data packets for one node."""

    def __init__(
        self,
        identity: Identity,
        router: RouteLookup[N],
        keys: KeyCache,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        route_queue: PacketQueue | None = None,
        incoming_queue: PacketQueue | None = None,
        packet_stats: PacketStats | None = None,
    ) -> None:
        self.identity = identity
        self.router = router
        self.keys = keys
        self.counters = Counters()
        self.packet_stats = packet_stats if packet_stats is not None else PacketStats()
        self._address = identity.address
        self._prefix = identity.address[:8]
        #: Our /64 network address: the source of out-of-band ICMP (docs/wire.md §5.5).
        self._network = identity.address[:8] + bytes(8)
        self.route_queue = new_route_queue() if route_queue is None else route_queue
        self.incoming_queue = new_incoming_queue() if incoming_queue is None else incoming_queue
        self._allow: AllowList | None = None
        #: What the router and the key cache said per address, while the router's version holds.
        self.kept: KeptDecisions[N] = KeptDecisions()
        #: Set when a packet took any other path than the common ones (sealed to a known
        #: destination, opened from a known source, forwarded on a selected route): only then
        #: can anything but frames and TUN packets be waiting. The runtime clears it.
        self.slow = False
        self._to_tun: list[bytes] = []
        #: IPv6 packets decrypted for our TUN, still behind their 4-byte user header, and the hop
        #: limit each must carry (written in when the TUN's buffers are built, one copy).
        self._delivered: list[bytes] = []
        self._delivered_hops: list[int] = []
        self._to_links: dict[N, list[bytes]] = {}
        self._messages: list[tuple[bytes, bytes, bytes]] = []
        self.nonces = NoncePool(random_bytes)
        #: Nonces of recently delivered packets: copies of them are dropped (dataplane/replay.py).
        self.replay = ReplayWindow()
        #: ICMPv6 errors we write to our TUN, and those we send to remote sources, are rate
        #: limited separately: a remote flood never silences the local ones, nor the reverse.
        self.local_icmp_limit = TokenBucket(icmp.ERRORS_PER_SECOND, icmp.ERROR_BURST, 0.0)
        self.oob_icmp_limit = TokenBucket(icmp.ERRORS_PER_SECOND, icmp.ERROR_BURST, 0.0)
        #: When set, every destination the TUN sent a routable packet to is added here (once
        #: per batch); its owner empties it (NAT traversal watches where our traffic goes).
        self.tun_destinations: set[bytes] | None = None

    @property
    def allow(self) -> AllowList | None:
        """Sources allowed to reach our TUN and message bus (``--allow-from``); None: all."""
        return self._allow

    @allow.setter
    def allow(self, allow: AllowList | None) -> None:
        self._allow = allow
        self.kept.opens.clear()

    # ------------------------------------------------------------------------------------------
    # outputs

    def take_to_tun(self) -> list[bytes]:
        """Every packet for the TUN, complete (those we made, then those we decrypted)."""
        packets, plains, hops = self.take_tun_output()
        for plain, hop in zip(plains, hops, strict=True):
            packets.append(b"".join((plain[4:11], _HOP_BYTE[hop], plain[12:])))
        return packets

    def take_tun_output(self) -> tuple[list[bytes], list[bytes], list[int]]:
        """What the runtime writes to the TUN: packets we made (ICMP), and the decrypted
        plaintexts with their hop limits (``tun.gro.coalesce_delivered`` builds their buffers)."""
        out = (self._to_tun, self._delivered, self._delivered_hops)
        self._to_tun, self._delivered, self._delivered_hops = [], [], []
        return out

    def take_link_batches(self) -> list[tuple[N, list[bytes]]]:
        """Frames to send, grouped per link in order: one write per link per flush."""
        if not self._to_links:
            return []
        links, self._to_links = self._to_links, {}
        return list(links.items())

    def take_messages(self) -> list[tuple[bytes, bytes, bytes]]:
        out, self._messages = self._messages, []
        return out

    @property
    def queued(self) -> int:
        """Packets parked waiting for a route (both directions)."""
        return len(self.route_queue) + len(self.incoming_queue)

    # ------------------------------------------------------------------------------------------
    # inputs

    def from_tun(self, packets: Sequence[bytes | bytearray | memoryview], now: float) -> None:
        """IPv6 packets read from the TUN: acceptance checks (docs/wire.md §9.3), then originate.

        The route and the cipher of a destination are looked up once and kept while the route
        table stays the same (``kept``, docs/wire.md §5.6). After that, a packet costs a few
        byte compares, one encryption and one join; anything unusual goes through
        ``_tun_slow``."""
        c = self.counters
        c.tun_packets += len(packets)
        kept = self.kept
        kept.check(self.router.versioned.version, now)
        paths = kept.paths
        links = self._to_links
        ready: dict[bytes, tuple[list[bytes], Sealer]] = {}
        stats = self.packet_stats
        # One path lookup per (src, dst) run, counted in native ints, recorded when it ends.
        run_pair = b""
        run_path: tuple[list[bytes], Sealer] | None = None
        run_packets = run_bytes = 0
        word, word_size, word_hop = b"", -1, -1  # the length and hop word of the last packet
        sent = 0
        no_aad = NO_AAD  # an imported name: a dict lookup at each use
        for buffer in packets:
            # A bytearray or memoryview from a readinto-style reader is copied once.
            pkt = buffer if type(buffer) is bytes else bytes(buffer)
            n = len(pkt)
            pair = pkt[8:40]
            same_run = pair == run_pair
            if same_run:  # the last packet's addresses: its destination's path
                path = run_path
            else:
                dst = pair[16:]
                path = ready.get(dst)
                if path is None:
                    known = paths.get(dst)
                    if known is not None:
                        path = ready[dst] = (links.setdefault(known[0], []), known[1])
            # A cached destination implies at least 40 bytes; the rest of the checks per packet:
            # size, version, a source inside 400::/7, a hop limit that survives our router step.
            if path is None or n > MAX_INNER_PACKET or pkt[0] >> 4 != 6 or pkt[8] & 0xFE != 4:
                path = self._tun_slow(pkt, now)
                if path is not None:
                    ready[pkt[24:40]] = path
                continue
            hop = pkt[7]
            if hop < 2:
                self._tun_slow(pkt, now)
                continue
            frames, sealer = path
            number = sealer.count
            sealer.count = number + 1
            if n != word_size or hop != word_hop:  # to_bytes makes an int and a bytes object
                word = (((n + _SEAL_OVERHEAD) << 8) | (hop - 1)).to_bytes(4, "big")
                word_size, word_hop = n, hop
            sealed = sealer.cipher.encrypt(number, _HDR_L3 + pkt, no_aad)
            iv = (sealer.base ^ number).to_bytes(NONCE_SIZE, "big")
            frames.append(b"".join((DATA_OUTER, word, pair, sealed, iv)))
            if not same_run:
                if run_packets:
                    stats.record(run_pair[:16], run_pair[16:], run_packets, run_bytes)
                run_pair, run_path = pair, path
                run_packets = run_bytes = 0
            run_packets += 1
            run_bytes += n + _SEAL_OVERHEAD
            sent += 1
        if run_packets:
            stats.record(run_pair[:16], run_pair[16:], run_packets, run_bytes)
        c.sent += sent
        if self.tun_destinations is not None:
            self.tun_destinations.update(ready)

    def _tun_slow(self, pkt: bytes, now: float) -> tuple[list[bytes], Sealer] | None:
        """Every check of one TUN packet with its counter or ICMP answer, then ``_originate``;
        returns its destination's (frames, sealer) once that is ready for the batch loop."""
        self.slow = True
        c = self.counters
        n = len(pkt)
        if n < 40:
            c.tun_too_short += 1
            return None
        if pkt[0] & 0xF0 != 0x60:
            c.tun_not_ipv6 += 1
            return None
        if n > MAX_INNER_PACKET:
            c.tun_too_large += 1
            return None
        src = pkt[8:24]
        dst = pkt[24:40]
        if dst[:8] == self._prefix:
            c.tun_local_unreachable += 1
            code = icmp.CODE_ADDRESS_UNREACHABLE
            self._local_error(self._address, src, 64, icmp.DEST_UNREACHABLE, code, pkt, now)
            return None
        if src[0] & 0xFE != 0x04:
            c.tun_bad_source += 1
            code = icmp.CODE_SOURCE_POLICY
            self._local_error(self._address, src, 64, icmp.DEST_UNREACHABLE, code, pkt, now)
            return None
        return self._originate(_HDR_L3, pkt, src, dst, pkt[7], now)

    def send_message(self, dst: bytes, payload: bytes, now: float) -> None:
        """Send a message-subsystem payload (type 0x01) from our own address, hop limit 64."""
        if len(dst) != 16:
            raise ValueError(f"a destination is a 16-byte IPv6 address, got {len(dst)} bytes")
        if len(payload) + _SEAL_OVERHEAD > MAX_DATA_BODY:
            self.counters.message_too_large += 1
            return
        self.counters.messages_sent += 1
        self._originate(_HDR_MESSAGE, payload, self._address, bytes(dst), DEFAULT_HOP_LIMIT, now)

    def from_link(self, packets: list[DataPacket], now: float) -> None:
        """Data packets received from neighbours: the router step, then deliver or forward."""
        prefix = self._prefix
        route = self.router.route
        links = self._to_links
        c = self.counters
        # Key and replay window by source (L3 delivery, the hot path) and the link towards a
        # destination we relay to, kept across batches while the route table stays the same
        # (dataplane/kept.py).
        kept = self.kept
        kept.check(self.router.versioned.version, now)
        opened = kept.opens
        hops = kept.hops
        replay = self.replay
        generation = replay.generation_size
        # Typed lists, not their bound ``append``: compiled, an append is then a C call.
        to_tun = self._delivered
        to_tun_hops = self._delivered_hops
        stats = self.packet_stats
        # Per (src, dst) run: counted as in from_tun; for us or not, and its kept key, found once.
        run_src = run_dst = b""
        run_packets = run_bytes = 0
        run_local = False
        run_open: tuple[Opener, Window] | None = None
        delivered = local = 0
        for p in packets:
            # Like the reference's router, count every packet handed to it, before any check.
            src = p.src
            dst = p.dst
            sealed = p.sealed
            iv = p.nonce
            size = len(sealed) + len(iv)
            if src != run_src or dst != run_dst:
                if run_packets:
                    stats.record(run_src, run_dst, run_packets, run_bytes)
                run_src, run_dst = src, dst
                run_packets = run_bytes = 0
                run_local = dst[:8] == prefix
                run_open = None
            run_packets += 1
            run_bytes += size
            hop = p.hop_limit
            if hop < 2:
                c.hop_limit_expired += 1
                self._oob_icmp(icmp.TIME_EXCEEDED, icmp.CODE_HOP_LIMIT, p, now)
                run_open = None  # its nested from_link may have cleared the kept keys
                continue
            hop -= 1
            if run_local:
                local += 1
                cached = run_open
                if cached is None:
                    cached = run_open = opened.get(src)
                if cached is None or size < MIN_SEALED_SIZE or now >= cached[1].expires:
                    run_open = None
                    first = self._deliver(src, dst, hop, sealed, iv, now)
                    if first is not None:
                        kept.keep_open(src, first, replay.window(src, now))
                    continue
                opener, window = cached
                try:
                    plain = opener.open(sealed, iv)
                except AuthenticationFailed:
                    c.decrypt_failed += 1
                    continue
                current = window.current
                held = len(current)
                if iv not in window.previous:
                    current.add(iv)  # one lookup: a nonce already there leaves the size unchanged
                if len(current) == held:
                    replay.replayed += 1
                    continue
                if held + 1 >= generation:
                    replay.rotate(window, now)
                if plain[1] == _TYPE_L3 and plain[0] == _USER_VERSION and len(plain) >= 44:
                    to_tun.append(plain)
                    to_tun_hops.append(hop)
                    delivered += 1
                else:
                    self._deliver_plain(src, dst, hop, plain)
                continue
            neighbour = hops.get(dst)
            if neighbour is None:
                decision = route(dst, now, False)
                if type(decision) is not Forward:
                    self._forward_slow(decision, data_packet(src, dst, hop, sealed, iv), now)
                    continue
                neighbour = decision.neighbour
                kept.keep_hop(dst, neighbour)
            word = ((size << 8) | hop).to_bytes(4, "big")
            frame = b"".join((DATA_OUTER, word, src, dst, sealed, iv))
            frames = links.get(neighbour)
            if frames is None:
                links[neighbour] = [frame]
            else:
                frames.append(frame)
            c.forwarded += 1
        if run_packets:
            stats.record(run_src, run_dst, run_packets, run_bytes)
        c.delivered += delivered
        c.routed_local += local

    def route_changes(self, subnets: list[Subnet], now: float) -> None:
        """Selected routes appeared or were lost: release or drop what waits for them."""
        for changed in subnets:
            for subnet in self.incoming_queue.subnets_within(changed):
                released = self.incoming_queue.take(subnet)
                self.counters.awaiting_key_released += len(released)
                for p in released:
                    self._deliver(p.src, p.dst, p.hop_limit, p.sealed, p.nonce, now)
            for subnet in self.route_queue.subnets_within(changed):
                self._release(subnet, now)

    def tick(self, now: float) -> None:
        """Time out parked packets (15 s, the reference's route query timeout)."""
        for _, items in self.route_queue.expire(now):
            self.counters.queue_timeout += len(items)
            self._drop_parked(items, now)
        for _, items in self.incoming_queue.expire(now):
            self.counters.awaiting_key_dropped += len(items)

    def next_deadline(self) -> float | None:
        deadlines = (self.route_queue.next_deadline(), self.incoming_queue.next_deadline())
        return min((d for d in deadlines if d is not None), default=None)

    # ------------------------------------------------------------------------------------------
    # origin

    def _originate(
        self, header: bytes, payload: bytes, src: bytes, dst: bytes, hop: int, now: float
    ) -> tuple[list[bytes], Sealer] | None:
        """Encrypt and send a packet we originate, or park it until a route is selected.

        Returns (the frame list of the link it went to, a cipher sealing to its destination)
        when it was sent, for ``from_tun`` to reuse for the rest of its batch."""
        if hop < 2:
            # Only L3 packets can get here (messages use 64): answer from their own source.
            self.counters.tun_hop_limit += 1
            code = icmp.CODE_HOP_LIMIT
            self._local_error(src, src, hop, icmp.TIME_EXCEEDED, code, payload, now)
            return None
        if dst[:8] == self._prefix:
            # Only messages get here (the TUN checks refuse our own /64): hand them straight back.
            if header is _HDR_MESSAGE:
                self.counters.local_messages += 1
                self._messages.append((src, dst, payload))
            return None
        decision = self.router.route(dst, now, True)
        if type(decision) is Forward:
            try:
                sealer = self.kept.sealer(decision.public_key, self.keys, self.nonces.take)
            except CryptoError:
                self.counters.no_route += 1
                return None
            body = sealer.seal(header + payload)
            hop -= 1  # the origin's own router step (docs/wire.md §4.5)
            frame = b"".join(
                (DATA_OUTER, ((len(body) << 8) | hop).to_bytes(4, "big"), src, dst, body)
            )
            self.packet_stats.record(src, dst, 1, len(body))
            frames = self._to_links.setdefault(decision.neighbour, [])
            frames.append(frame)
            self.counters.sent += 1
            self.kept.keep_path(dst, decision.neighbour, sealer)
            return frames, sealer
        if type(decision) is Local:  # the router claims a /64 that is not ours: nothing to do
            self.counters.no_route += 1
            return None
        # Queue (route being resolved) or, defensively, NoRoute: park it unencrypted.
        item: _Unsealed = (header, payload, src, dst, hop)
        if self.route_queue.add(Subnet.of(dst, 64), item, len(payload), now):
            self.counters.queued += 1
        else:
            self.counters.queue_full += 1
            self._answer_unsealed(item, now)
        return None

    def _answer_unsealed(self, item: _Unsealed, now: float) -> None:
        """ICMP no route for one of our own L3 packets that could not be sent (from its source)."""
        header, payload, src, _dst, hop = item
        if header is _HDR_L3:
            code = icmp.CODE_NO_ROUTE
            self._local_error(src, src, hop, icmp.DEST_UNREACHABLE, code, payload, now)

    def _local_error(
        self, src: bytes, dst: bytes, hop: int, kind: int, code: int, offending: bytes, now: float
    ) -> None:
        if not self.local_icmp_limit.take(now):
            self.counters.icmp_rate_limited += 1
            return
        self.counters.local_icmp += 1
        self._to_tun.append(icmp.error_reply(src, dst, hop, kind, code, offending))

    # ------------------------------------------------------------------------------------------
    # queue release

    def _release(self, subnet: Subnet, now: float) -> None:
        items = self.route_queue.take(subnet)
        if not items:
            return
        first = items[0]
        dst = first[3] if isinstance(first, tuple) else first.dst
        decision = self.router.route(dst, now, True)
        if type(decision) is not Forward and type(decision) is not Local:
            self.counters.queue_route_lost += len(items)
            self._drop_parked(items, now)
            return
        self.counters.queue_released += len(items)
        for item in items:
            if isinstance(item, tuple):
                header, payload, src, dst, hop = item
                self._originate(header, payload, src, dst, hop, now)
            else:
                # The reference routes released transit packets through the full router step
                # again, so they pay a second hop-limit decrement.
                self.from_link([item], now)

    def _drop_parked(self, items: list[Any], now: float) -> None:
        for item in items:
            if isinstance(item, tuple):
                self._answer_unsealed(item, now)
            # transit packets are dropped silently: their payload is not ours to quote

    # ------------------------------------------------------------------------------------------
    # forwarding

    def _forward_slow(self, decision: object, p: DataPacket, now: float) -> None:
        """Everything after the router step except a ready route (hop limit already decremented)."""
        self.slow = True
        if type(decision) is Local:
            self._deliver(p.src, p.dst, p.hop_limit, p.sealed, p.nonce, now)
            return
        if type(decision) is Queue:
            if self.route_queue.add(Subnet.of(p.dst, 64), p, p.size, now):
                self.counters.queued += 1
                return
            self.counters.queue_full += 1
        self.counters.no_route += 1
        self._oob_icmp(icmp.DEST_UNREACHABLE, icmp.CODE_NO_ROUTE, p, now)

    def _oob_icmp(self, kind: int, code: int, p: DataPacket, now: float) -> None:
        """Tell the source of a packet we dropped in transit why, encrypted to it
        (docs/wire.md §5.5)."""
        self.slow = True
        src = p.src
        if src[:8] == self._prefix:
            # About a packet from our own /64 (e.g. an OOB ICMP of ours): never answer ourselves.
            self.counters.oob_icmp_dropped += 1
            return
        if not self.oob_icmp_limit.take(now):  # before any route query it could cause
            self.counters.icmp_rate_limited += 1
            return
        public_key = self.router.public_key_for(src)
        if public_key is None:
            self.router.request_route(src, now)
            self.counters.oob_icmp_dropped += 1
            return
        try:
            key = self.keys.get(public_key)
        except CryptoError:
            self.counters.oob_icmp_dropped += 1
            return
        orig = p.body if p.size <= MAX_OOB_QUOTE else b""
        packet = icmp.icmpv6_packet(self._network, src, DEFAULT_HOP_LIMIT, kind, code, orig)
        body = key.seal(_HDR_ICMP + p.dst + packet, self.nonces.take())
        self.counters.oob_icmp_sent += 1
        self.from_link([DataPacket(self._network, src, DEFAULT_HOP_LIMIT, body)], now)

    # ------------------------------------------------------------------------------------------
    # local delivery

    def _deliver(
        self, src: bytes, dst: bytes, hop: int, sealed: bytes, nonce: bytes, now: float
    ) -> Opener | None:
        """Decrypt a packet for our /64 with the key of the route covering its *source*.

        Returns the opener that opened it, kept per remote key (``from_link`` also keeps it
        with the source's replay window for the source's next packets)."""
        self.slow = True
        allow = self._allow
        if allow is not None and not allow.allows(src):
            return None
        c = self.counters
        size = len(sealed) + len(nonce)
        public_key = self.router.public_key_for(src)
        if public_key is None:
            self.router.request_route(src, now)
            parked = data_packet(src, dst, hop, sealed, nonce)
            if self.incoming_queue.add(Subnet.of(src, 64), parked, size, now):
                c.awaiting_key += 1
            else:
                c.awaiting_key_dropped += 1
            return None
        if size < MIN_SEALED_SIZE:
            c.decrypt_failed += 1
            return None
        kept = self.kept
        opener = kept.openers.get(public_key)
        try:
            if opener is None:  # kept once a packet opened: a forgery must not choose its IV
                opener = Opener(self.keys.get(public_key).raw, nonce)
                plain = opener.open(sealed, nonce)
                kept.keep_opener(public_key, opener)
            else:
                plain = opener.open(sealed, nonce)
        except (CryptoError, AuthenticationFailed):
            c.decrypt_failed += 1
            return None
        if not self.replay.seen(src, nonce, now):
            self._deliver_plain(src, dst, hop, plain)
        return opener

    def _deliver_plain(self, src: bytes, dst: bytes, hop: int, plain: bytes) -> None:
        self.slow = True  # reached from the common path only for messages and OOB ICMP
        c = self.counters
        if len(plain) < 4 or plain[0] != _USER_VERSION:
            c.bad_payload += 1
            return
        kind = plain[1]
        if kind == _TYPE_L3:
            if len(plain) < 44:
                c.bad_payload += 1
                return
            self._delivered.append(plain)
            self._delivered_hops.append(hop)
            c.delivered += 1
        elif kind == _TYPE_MESSAGE:
            c.messages_received += 1
            self._messages.append((src, dst, plain[4:]))
        elif kind == _TYPE_ICMP:
            packet = icmp.rebuild_oob(
                src, dst, hop, plain[4:], self.router.public_key_for, self.keys, c
            )
            if packet is not None:
                self._to_tun.append(packet)
        else:
            c.bad_payload += 1
