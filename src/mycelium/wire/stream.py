"""Incremental decoding of a packet stream (TCP, TLS, vsock, the QUIC control stream).

Bytes arrive in arbitrary chunks. Outer-header violations are fatal (``FramingError``), exactly
where the reference closes the connection. A bad control body is skipped by its declared length
and counted, so one bad TLV never costs the packets after it.
"""

from __future__ import annotations

from .errors import FramingError, MalformedPacket
from .packet import (
    BABEL_HEADER_SIZE,
    BABEL_MAGIC,
    BABEL_VERSION,
    DATA_HEADER_SIZE,
    OUTER_HEADER_SIZE,
    PROTOCOL_VERSION,
    TYPE_CONTROL,
    TYPE_DATA,
    DataPacket,
    data_packet,
    nonce_cut,
)
from .tlv import Tlv, decode_tlv

Packet = DataPacket | Tlv


def _decode_control_body(body: bytes) -> Tlv:
    """The first TLV of a babel body (magic, version and TLV bounds checked)."""
    if body[0] != BABEL_MAGIC or body[1] != BABEL_VERSION:
        raise MalformedPacket(f"babel magic/version {body[0]}/{body[1]}")
    payload = body[BABEL_HEADER_SIZE:]
    if len(payload) < 2:
        raise MalformedPacket("control packet without a TLV")
    tlv_len = payload[1]
    if 2 + tlv_len > len(payload):
        raise MalformedPacket("TLV longer than its control packet")
    return decode_tlv(payload[0], payload[2 : 2 + tlv_len])


class StreamDecoder:
    """Feed bytes, get packets. Memory is bounded by one maximal packet plus one chunk.

    Packets are sliced straight out of the ``bytes`` chunk the transport handed us (one object
    per field, no intermediate copies); only an unfinished tail is kept, and it is appended to
    in place until the packet it starts is complete, so a slow sender costs linear time.
    """

    __slots__ = ("_buf", "_fatal", "_need", "dropped", "last_error")

    def __init__(self) -> None:
        self._buf = bytearray()
        #: Bytes the buffered tail must reach before parsing can make progress.
        self._need = 0
        #: Control packets skipped because their body was malformed.
        self.dropped = 0
        #: Why the last one was skipped (a string: holding the exception would pin the buffer).
        self.last_error = ""
        #: Why the stream became unusable; every later feed raises it again (no resync).
        self._fatal = ""

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        """Packets completed by ``data``; raises ``FramingError`` once the stream is unusable."""
        if self._fatal:
            raise FramingError(self._fatal)
        if type(data) is not bytes:
            data = bytes(data)
        out: list[Packet] = []
        pos = 0
        buf = self._buf
        # A buffered tail is finished with only the bytes it lacks (appending the whole chunk to
        # it would copy the chunk twice); its header may first tell how many more it needs.
        while buf:
            missing = self._need - len(buf)
            if len(data) - pos < missing:
                buf += memoryview(data)[pos:]
                return out
            buf += memoryview(data)[pos : pos + missing]
            pos += missing
            head = bytes(buf)
            buf.clear()
            self._parse(head, 0, out)
        self._parse(data, pos, out)
        return out

    def _parse(self, data: bytes, pos: int, out: list[Packet]) -> None:
        """Append the packets in ``data[pos:]`` to ``out``; keep an unfinished tail."""
        end = len(data)
        need = OUTER_HEADER_SIZE + 1
        while end - pos > OUTER_HEADER_SIZE:
            if data[pos] != PROTOCOL_VERSION:
                self._fatal = f"unknown protocol version {data[pos]}"
                raise FramingError(self._fatal)
            kind = data[pos + 1]
            if kind == TYPE_DATA:
                start = pos + OUTER_HEADER_SIZE + DATA_HEADER_SIZE
                if start > end:
                    need = start - pos
                    break
                # The length and hop limit are read byte by byte: struct's unpack_from is a call
                # and a tuple per packet, byte indexing compiles to a load.
                stop = start + (data[pos + 5] << 8 | data[pos + 6])
                if stop > end:
                    need = stop - pos
                    break
                cut = nonce_cut(start, stop)
                out.append(
                    data_packet(
                        data[pos + 8 : pos + 24],
                        data[pos + 24 : start],
                        data[pos + 7],
                        data[start:cut],
                        data[cut:stop],
                    )
                )
                pos = stop
            elif kind == TYPE_CONTROL:
                start = pos + OUTER_HEADER_SIZE
                if start + BABEL_HEADER_SIZE > end:
                    need = start + BABEL_HEADER_SIZE - pos
                    break
                stop = start + BABEL_HEADER_SIZE + (data[start + 2] << 8 | data[start + 3])
                if stop > end:
                    need = stop - pos
                    break
                try:
                    out.append(_decode_control_body(data[start:stop]))
                except MalformedPacket as exc:
                    self.dropped += 1
                    self.last_error = str(exc)
                pos = stop
            else:
                self._fatal = f"invalid packet type {kind}"
                raise FramingError(self._fatal)
        if pos < end:
            self._buf += memoryview(data)[pos:]
            self._need = need

    def finish(self) -> None:
        """At end of stream: a partially received packet is an error, as in the reference."""
        if self._buf:
            raise FramingError(f"stream ended inside a packet ({len(self._buf)} bytes pending)")


def split_data(packets: list[Packet]) -> tuple[list[DataPacket], list[Tlv]]:
    """A batch's data packets and control TLVs apart, each in arrival order: compiled, this is
    a C loop, where the node's own loop over the batch ran in the interpreter per packet."""
    data: list[DataPacket] = []
    control: list[Tlv] = []
    for packet in packets:
        if isinstance(packet, DataPacket):
            data.append(packet)
        else:
            control.append(packet)
    return data, control


def decode_packet(data: bytes) -> Packet:
    """Exactly one packet from one datagram (QUIC); trailing bytes are ignored, as Rust does.

    Parsed on its own rather than through ``StreamDecoder``: a stream decoder would go on to read
    the trailing bytes as the next packet's header and fail the whole datagram.
    """
    end = len(data)
    if end <= OUTER_HEADER_SIZE:
        raise FramingError("datagram does not hold one complete packet")
    if data[0] != PROTOCOL_VERSION:
        raise FramingError(f"unknown protocol version {data[0]}")
    kind = data[1]
    if kind == TYPE_DATA:
        start = OUTER_HEADER_SIZE + DATA_HEADER_SIZE
        if start <= end:
            stop = start + (data[5] << 8 | data[6])
            if stop <= end:
                cut = nonce_cut(start, stop)
                return data_packet(
                    bytes(data[8:24]),
                    bytes(data[24:start]),
                    data[7],
                    bytes(data[start:cut]),
                    bytes(data[cut:stop]),
                )
    elif kind == TYPE_CONTROL:
        start = OUTER_HEADER_SIZE
        if start + BABEL_HEADER_SIZE <= end:
            stop = start + BABEL_HEADER_SIZE + (data[start + 2] << 8 | data[start + 3])
            if stop <= end:
                return _decode_control_body(bytes(data[start:stop]))
    else:
        raise FramingError(f"invalid packet type {kind}")
    raise FramingError("datagram does not hold one complete packet")
