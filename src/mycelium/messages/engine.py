"""The message engine (docs/messages.md), sans-I/O: reliable, chunked, acknowledged messages.

Inputs: ``push`` / ``pop`` calls, message packets from the data plane, ``tick``; all take ``now``.
Outputs, drained by the runtime: packets to send (``take_outgoing``), replies for waiting senders
(``take_replies``) and messages to forward to a topic's Unix socket (``take_forwards``).

Sender (as the reference): INIT, repeated every 100 ms until acknowledged; then every chunk at
once, each repeated every 100 ms until acknowledged; then DONE every 100 ms until acknowledged.
After 5 minutes an unfinished message is aborted (ABORTED sent), after 10 minutes forgotten.
Receiver: INIT opens a pending message (topic ACL first), CHUNKs fill it, DONE completes it when
every chunk is there and the BLAKE3 checksum matches. Popping a message sends READ.

Deviations, all defensive: declared lengths, pending messages (in all and per sending /64),
stored chunk bytes and the inbox are bounded (the reference allocates whatever an INIT
announces); a CHUNK, DONE, READ, ABORTED or ACK counts only from the node the message is
exchanged with; a duplicate INIT does not reset a message whose chunks are arriving; a pending
message that hears nothing for a minute is dropped (a live sender repeats every 100 ms).

Reserved topics (``reserved.py``) are the node's own: outside the topic rules, never in the
inbox; ``query`` asks another node whether it serves one.
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import blake3

from ..wire import message as wire
from ..wire.errors import MalformedPacket
from .reserved import ReservedTopics, is_reserved
from .topics import TopicConfig

SEND_WINDOW = 300.0
RETRANSMISSION_DELAY = 0.1
REPLY_SUBSCRIBER_CLEAR_DELAY = 60.0
CHUNK_SIZE = 1300
MINIMUM_CHUNK_SIZE = 250

MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_PENDING_MESSAGES = 1024
MAX_PENDING_BYTES = 256 * 1024 * 1024
#: One sender (a /64: one key) may hold this share of the above; its INITs beyond are not
#: acknowledged, so it retries them once its earlier messages complete.
MAX_PENDING_PER_SOURCE = 64
MAX_PENDING_BYTES_PER_SOURCE = 128 * 1024 * 1024
#: A pending message that receives nothing for this long is dropped (checked every minute).
PENDING_IDLE_TIMEOUT = 60.0
MAX_INBOX_MESSAGES = 10_000
MAX_INBOX_BYTES = 512 * 1024 * 1024


class State(Enum):
    INIT = "pending"
    IN_PROGRESS = "sending"
    RECEIVED = "received"
    READ = "read"
    ABORTED = "aborted"


@dataclass(slots=True)
class ReceivedMessage:
    id: bytes
    is_reply: bool
    src_ip: bytes
    src_pk: bytes
    dst_ip: bytes
    dst_pk: bytes
    topic: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class ChunkProgress:
    """Chunks of a message being sent: not yet sent, sent and unacknowledged, acknowledged."""

    pending: int
    sent: int
    acked: int


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """An outbound message as ``MessageEngine.status`` reports it."""

    dst: bytes
    state: State
    #: Only while the chunks are being sent (``State.IN_PROGRESS``).
    progress: ChunkProgress | None
    created: float
    deadline: float
    length: int


class _ChunkState:
    __slots__ = ("acked", "offset", "sent_at", "size")

    def __init__(self, offset: int, size: int) -> None:
        self.offset = offset
        self.size = size
        self.sent_at: float | None = None
        self.acked = False


@dataclass(slots=True)
class _Outbound:
    id: bytes
    dst: bytes
    data: bytes
    topic: bytes
    is_reply: bool
    created: float
    deadline: float
    state: State = State.INIT
    chunks: list[_ChunkState] = field(default_factory=list)
    next_wake: float = 0.0


@dataclass(slots=True)
class _Pending:
    id: bytes
    is_reply: bool
    src: bytes
    dst: bytes
    length: int
    topic: bytes
    created: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    stored: int = 0
    #: When its sender last sent something for it.
    heard: float = 0.0


def chunk_layout(size: int) -> list[tuple[int, int]]:
    """(offset, size) of each chunk: 1300 bytes each, as many as the reference expects, except
    that a short last chunk borrows from the one before so it is at least 250 bytes: a reference
    receiver drops smaller chunks that are not at the index it reserves for a short one."""
    sizes = [CHUNK_SIZE] * (size // CHUNK_SIZE)
    rest = size - CHUNK_SIZE * len(sizes)
    if rest:
        if sizes and rest < MINIMUM_CHUNK_SIZE:
            sizes[-1] -= MINIMUM_CHUNK_SIZE - rest
            rest = MINIMUM_CHUNK_SIZE
        sizes.append(rest)
    layout, offset = [], 0
    for n in sizes:
        layout.append((offset, n))
        offset += n
    return layout


@dataclass(slots=True)
class MessageCounters:
    bad_checksums: int = 0
    bad_packets: int = 0
    inbox_dropped: int = 0
    received: int = 0
    rejected_by_topic: int = 0
    rejected_too_large: int = 0
    #: INITs refused because their sender already holds its share of the pending slots.
    rejected_sender_busy: int = 0
    #: Packets naming a message exchanged with another node (spoofed or confused).
    wrong_peer: int = 0
    #: Pending messages dropped after a minute without a packet.
    idle_dropped: int = 0
    #: Reserved-topic INITs refused (not served, too large, a reply, or over the rate).
    rejected_reserved: int = 0
    sent: int = 0


class MessageEngine:
    def __init__(
        self,
        address: bytes,
        public_key: bytes,
        lookup_key: Callable[[bytes], bytes | None],
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
        topics: TopicConfig | None = None,
    ) -> None:
        self.address = address
        self.public_key = public_key
        self.topics = topics or TopicConfig()
        self.counters = MessageCounters()
        self._lookup_key = lookup_key
        self._random = random_bytes
        self._outbox: dict[bytes, _Outbound] = {}
        self._pending: dict[bytes, _Pending] = {}
        self._pending_bytes = 0
        #: Sending /64 -> (pending messages, their declared bytes).
        self._per_source: dict[bytes, tuple[int, int]] = {}
        self._inbox: deque[ReceivedMessage] = deque()
        self._inbox_bytes = 0
        self._subscribers: dict[bytes, float] = {}
        self._outgoing: list[tuple[bytes, bytes]] = []
        self._replies: list[ReceivedMessage] = []
        self._forwards: list[tuple[ReceivedMessage, str]] = []
        # (due, tiebreak, message id): lazily deleted, an entry is live while it equals _due().
        self._wakes: list[tuple[float, int, bytes]] = []
        self._tiebreak = itertools.count()
        self._next_sweep = 0.0
        #: Recently completed inbound messages (id -> sender), to acknowledge repeated DONEs.
        self._completed: OrderedDict[bytes, bytes] = OrderedDict()
        self.reserved = ReservedTopics(random_bytes)

    # --- sending ----------------------------------------------------------------------------
    def push(
        self,
        dst: bytes,
        data: bytes,
        now: float,
        topic: bytes = b"",
        try_duration: float = SEND_WINDOW,
        reply_to: bytes | None = None,
        subscribe: bool = False,
    ) -> bytes:
        """Queue a message (or, with ``reply_to``, a reply); returns its 8-byte id."""
        if len(topic) > wire.MAX_TOPIC:
            raise ValueError("topic too large, topic is limited to 255 bytes")
        message_id = reply_to if reply_to is not None else self._random(wire.ID_SIZE)
        out = _Outbound(message_id, dst, data, topic, reply_to is not None, now, now + try_duration)
        self._outbox[message_id] = out
        if subscribe:
            self._subscribers[message_id] = math.inf
        self._send_pass(out, now)
        self.counters.sent += 1
        return message_id

    def reply(self, reply_to: bytes, dst: bytes, data: bytes, now: float) -> bytes:
        return self.push(dst, data, now, reply_to=reply_to)

    def query(self, dst: bytes, topic: bytes) -> None:
        """Ask ``dst`` whether it serves the reserved ``topic`` (``reserved.take_answers``)."""
        self._emit(dst, self.reserved.query(dst, topic))

    def unsubscribe(self, message_id: bytes, now: float) -> None:
        """The waiting sender gave up: replies arriving in the next minute still go to it, later
        ones to the inbox (the reference keeps the subscriber for 60 s)."""
        if message_id in self._subscribers:
            self._subscribers[message_id] = now + REPLY_SUBSCRIBER_CLEAR_DELAY

    def _emit(self, dst: bytes, packet: wire.MessagePacket) -> None:
        self._outgoing.append((dst, packet.encode()))

    def _send_pass(self, out: _Outbound, now: float) -> None:
        """One wake of the reference's per-message send loop."""
        out.next_wake = now + RETRANSMISSION_DELAY
        self._schedule(out)
        if out.state is State.INIT:
            flags = wire.FLAG_INIT | (wire.FLAG_REPLY if out.is_reply else 0)
            self._emit(
                out.dst, wire.MessagePacket(out.id, flags, wire.init_body(len(out.data), out.topic))
            )
        elif out.state is State.IN_PROGRESS:
            all_acked = True
            for index, chunk in enumerate(out.chunks):
                if chunk.acked:
                    continue
                all_acked = False
                if chunk.sent_at is None or now - chunk.sent_at >= RETRANSMISSION_DELAY:
                    body = wire.chunk_body(
                        index, chunk.offset, out.data[chunk.offset : chunk.offset + chunk.size]
                    )
                    self._emit(out.dst, wire.MessagePacket(out.id, wire.FLAG_CHUNK, body))
                    chunk.sent_at = now
            if all_acked:
                body = wire.done_body(len(out.chunks), blake3.blake3(out.data).digest())
                self._emit(out.dst, wire.MessagePacket(out.id, wire.FLAG_DONE, body))

    # --- receiving ----------------------------------------------------------------------------
    def handle(self, src: bytes, dst: bytes, payload: bytes, now: float) -> None:
        """One message packet from the data plane (decrypted, addressed to us)."""
        try:
            packet = wire.decode(payload)
            if packet.has(wire.FLAG_TOPIC_QUERY):
                answer = self.reserved.on_query(packet, src, now)
                if answer is not None:
                    self._emit(src, answer)
            elif packet.has(wire.FLAG_ACK):
                self._handle_ack(packet, src, now)
            else:
                self._handle_message(packet, src, dst, now)
        except MalformedPacket:
            self.counters.bad_packets += 1

    def _handle_ack(self, packet: wire.MessagePacket, src: bytes, now: float) -> None:
        out = self._outbox.get(packet.id)
        if out is None:
            return
        if out.dst != src:
            self.counters.wrong_peer += 1
            return
        if packet.has(wire.FLAG_INIT):
            if out.state is not State.INIT:
                return
            out.state = State.IN_PROGRESS
            out.chunks = [_ChunkState(o, n) for o, n in chunk_layout(len(out.data))]
            self._send_pass(out, now)
        elif packet.has(wire.FLAG_CHUNK):
            if out.state is not State.IN_PROGRESS:
                return
            index = packet.chunk().index
            if index < len(out.chunks):
                out.chunks[index].acked = True
                self._send_pass(out, now)
        elif packet.has(wire.FLAG_DONE) and out.state is State.IN_PROGRESS:
            out.state = State.RECEIVED

    def _handle_message(
        self, packet: wire.MessagePacket, src: bytes, dst: bytes, now: float
    ) -> None:
        if packet.has(wire.FLAG_INIT):
            self._on_init(packet, src, dst, now)
        elif packet.has(wire.FLAG_READ):
            out = self._outbox.get(packet.id)
            if out is None:
                return
            if out.dst != src:
                self.counters.wrong_peer += 1
            elif out.state is State.RECEIVED:
                out.state = State.READ
        else:
            pending = self._pending.get(packet.id)
            if pending is None:
                if packet.has(wire.FLAG_DONE):
                    self._on_done_again(packet, src)
                return
            if pending.src != src:
                self.counters.wrong_peer += 1
                return
            pending.heard = now
            if packet.has(wire.FLAG_CHUNK):
                self._on_chunk(pending, packet, src)
            elif packet.has(wire.FLAG_DONE):
                self._on_done(pending, packet, src)
            elif packet.has(wire.FLAG_ABORTED):
                self._drop_pending(packet.id)

    def _on_init(self, packet: wire.MessagePacket, src: bytes, dst: bytes, now: float) -> None:
        init = packet.init()
        is_reply = packet.has(wire.FLAG_REPLY)
        if is_reserved(init.topic):
            if packet.id not in self._pending and not self.reserved.admits(
                init, is_reply, src, now
            ):
                self.counters.rejected_reserved += 1
                return
        elif not is_reply and not self.topics.allowed(init.topic, src):
            self.counters.rejected_by_topic += 1
            return
        if any(m.id == packet.id for m in self._inbox):
            return
        pending = self._pending.get(packet.id)
        if pending is None:
            source = src[:8]
            count, stored = self._per_source.get(source, (0, 0))
            if (
                init.length > MAX_MESSAGE_SIZE
                or len(self._pending) >= MAX_PENDING_MESSAGES
                or self._pending_bytes + init.length > MAX_PENDING_BYTES
            ):
                self.counters.rejected_too_large += 1
                return
            if (
                count >= MAX_PENDING_PER_SOURCE
                or stored + init.length > MAX_PENDING_BYTES_PER_SOURCE
            ):
                self.counters.rejected_sender_busy += 1
                return
            self._pending[packet.id] = _Pending(
                packet.id, is_reply, src, dst, init.length, init.topic, now, heard=now
            )
            self._pending_bytes += init.length
            self._per_source[source] = (count + 1, stored + init.length)
        elif pending.src != src:
            self.counters.wrong_peer += 1
            return
        else:
            pending.heard = now
        flags = wire.FLAG_INIT | wire.FLAG_ACK | (packet.flags & wire.FLAG_REPLY)
        self._emit(src, wire.MessagePacket(packet.id, flags, packet.body))

    def _on_chunk(self, pending: _Pending, packet: wire.MessagePacket, src: bytes) -> None:
        chunk = packet.chunk()
        length = pending.length
        if length < chunk.offset + chunk.size:
            return
        max_index = 0 if length == 0 else -(-length // MINIMUM_CHUNK_SIZE) - 1
        if chunk.index > max_index:
            return
        # The reference only lets the chunk at index ceil(length / 250) - 1 be small, which no
        # sender's last chunk ever has when there are several: its own messages whose last
        # 1300-byte chunk is short never complete. We also accept a small chunk that ends the
        # message.
        if (
            chunk.size < MINIMUM_CHUNK_SIZE
            and chunk.index != max_index
            and chunk.offset + chunk.size != length
        ):
            return
        previous = pending.chunks.get(chunk.index)
        stored = pending.stored - (len(previous) if previous is not None else 0) + chunk.size
        if stored > length:
            return  # overlapping chunks: a sender's chunks add up to the declared length
        pending.chunks[chunk.index] = chunk.data
        pending.stored = stored
        body = wire.chunk_ack_body(chunk)
        self._emit(src, wire.MessagePacket(packet.id, wire.FLAG_CHUNK | wire.FLAG_ACK, body))

    def _on_done_again(self, packet: wire.MessagePacket, src: bytes) -> None:
        """Deviation: the reference never acknowledges a DONE it already completed, so a lost
        DONE ACK leaves its sender retrying until the deadline; we acknowledge it again."""
        if self._completed.get(packet.id) == src:
            self._emit(
                src, wire.MessagePacket(packet.id, wire.FLAG_DONE | wire.FLAG_ACK, packet.body)
            )

    def _on_done(self, pending: _Pending, packet: wire.MessagePacket, src: bytes) -> None:
        done = packet.done()
        expected = -(-pending.length // CHUNK_SIZE)
        count = max(expected, max(pending.chunks, default=-1) + 1)
        if done.chunk_count != count:
            return
        parts = [pending.chunks.get(i) for i in range(count)]
        if any(p is None for p in parts):
            return
        data = b"".join(parts)  # type: ignore[arg-type]
        if len(data) != pending.length:
            return
        if blake3.blake3(data).digest() != done.checksum:
            self.counters.bad_checksums += 1
            return
        src_pk = self._lookup_key(pending.src)
        if src_pk is None:
            return
        message = ReceivedMessage(
            pending.id,
            pending.is_reply,
            pending.src,
            src_pk,
            pending.dst,
            self.public_key,
            pending.topic,
            data,
        )
        self._drop_pending(packet.id)
        self._completed[packet.id] = src
        if len(self._completed) > MAX_INBOX_MESSAGES:
            self._completed.popitem(last=False)
        self.counters.received += 1
        if is_reserved(message.topic) and not message.is_reply:
            self.reserved.internal.append(message)
        elif self._subscribers.pop(message.id, None) is not None:
            self._replies.append(message)
        else:
            socket_path = self.topics.forward_socket(message.topic)
            if socket_path is not None and not message.is_reply:
                self._forwards.append((message, socket_path))
            else:
                self.deliver(message)
        self._emit(src, wire.MessagePacket(packet.id, wire.FLAG_DONE | wire.FLAG_ACK, packet.body))

    def _drop_pending(self, message_id: bytes) -> None:
        pending = self._pending.pop(message_id, None)
        if pending is not None:
            self._pending_bytes -= pending.length
            source = pending.src[:8]
            count, stored = self._per_source[source]
            if count == 1:
                del self._per_source[source]
            else:
                self._per_source[source] = (count - 1, stored - pending.length)

    def deliver(self, message: ReceivedMessage) -> None:
        """Into the inbox (oldest dropped, and counted, when it is full)."""
        self._inbox.append(message)
        self._inbox_bytes += len(message.data)
        while len(self._inbox) > MAX_INBOX_MESSAGES or self._inbox_bytes > MAX_INBOX_BYTES:
            dropped = self._inbox.popleft()
            self._inbox_bytes -= len(dropped.data)
            self.counters.inbox_dropped += 1

    # --- the inbox ----------------------------------------------------------------------------
    def pop(self, topic: bytes | None = None, peek: bool = False) -> ReceivedMessage | None:
        """The oldest message (with ``topic``, if given); READ goes back to its sender."""
        for i, message in enumerate(self._inbox):
            if topic is None or message.topic == topic:
                if not peek:
                    del self._inbox[i]
                    self._inbox_bytes -= len(message.data)
                self._emit(message.src_ip, wire.MessagePacket(message.id, wire.FLAG_READ))
                return message
        return None

    @property
    def inbox_size(self) -> int:
        return len(self._inbox)

    # --- timers -------------------------------------------------------------------------------
    def _due(self, out: _Outbound) -> float:
        """When the message next needs attention: a resend, its abort, or forgetting it."""
        if out.state in (State.INIT, State.IN_PROGRESS):
            return min(out.next_wake, out.created + SEND_WINDOW)
        return out.created + 2 * SEND_WINDOW

    def _schedule(self, out: _Outbound) -> None:
        due = self._due(out)
        heapq.heappush(self._wakes, (due, next(self._tiebreak), out.id))

    def tick(self, now: float) -> None:
        wakes = self._wakes
        while wakes and wakes[0][0] <= now:
            due, _, message_id = heapq.heappop(wakes)
            out = self._outbox.get(message_id)
            if out is None or self._due(out) != due:
                continue  # superseded
            if now - out.created >= 2 * SEND_WINDOW:
                del self._outbox[message_id]
                continue
            if now - out.created >= SEND_WINDOW and out.state in (State.INIT, State.IN_PROGRESS):
                out.state = State.ABORTED
                self._emit(out.dst, wire.MessagePacket(out.id, wire.FLAG_ABORTED))
            elif out.state in (State.INIT, State.IN_PROGRESS):
                self._send_pass(out, now)
                continue  # the pass scheduled it
            self._schedule(out)
        if now >= self._next_sweep:
            self._next_sweep = now + REPLY_SUBSCRIBER_CLEAR_DELAY
            for message_id in [
                k for k, p in self._pending.items() if now - p.heard >= PENDING_IDLE_TIMEOUT
            ]:
                self._drop_pending(message_id)
                self.counters.idle_dropped += 1
            for message_id in [k for k, t in self._subscribers.items() if t <= now]:
                del self._subscribers[message_id]

    def next_deadline(self) -> float:
        wakes = self._wakes
        while wakes:
            due, _, message_id = wakes[0]
            out = self._outbox.get(message_id)
            if out is not None and self._due(out) == due:
                break
            heapq.heappop(wakes)
        deadline = wakes[0][0] if wakes else math.inf
        if self._pending or self._subscribers:
            deadline = min(deadline, self._next_sweep)
        return deadline

    # --- outputs ------------------------------------------------------------------------------
    def take_outgoing(self) -> list[tuple[bytes, bytes]]:
        out, self._outgoing = self._outgoing, []
        return out

    def take_replies(self) -> list[ReceivedMessage]:
        out, self._replies = self._replies, []
        return out

    def take_forwards(self) -> list[tuple[ReceivedMessage, str]]:
        out, self._forwards = self._forwards, []
        return out

    # --- status -------------------------------------------------------------------------------
    def status(self, message_id: bytes, clock_offset: float = 0.0) -> MessageStatus | None:
        """An outbound message's progress; ``clock_offset`` turns ``now`` into Unix time."""
        out = self._outbox.get(message_id)
        if out is None:
            return None
        progress = None
        if out.state is State.IN_PROGRESS:
            acked = sum(1 for c in out.chunks if c.acked)
            sent = sum(1 for c in out.chunks if not c.acked and c.sent_at is not None)
            progress = ChunkProgress(len(out.chunks) - acked - sent, sent, acked)
        return MessageStatus(
            out.dst,
            out.state,
            progress,
            out.created + clock_offset,
            out.deadline + clock_offset,
            len(out.data),
        )
