"""Byte-exact layouts of the message packets (docs/messages.md §2) and a never-crash decoder."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.wire import message as wm
from mycelium.wire.errors import MalformedPacket

MID = bytes(range(1, 9))


def test_header_layout() -> None:
    raw = wm.MessagePacket(MID, wm.FLAG_INIT | wm.FLAG_ACK, b"").encode()
    assert raw == MID + b"\x81\x00" + b"\x00\x00"
    assert len(raw) == wm.HEADER_SIZE


def test_flag_values() -> None:
    assert (wm.FLAG_INIT, wm.FLAG_DONE, wm.FLAG_ABORTED, wm.FLAG_CHUNK) == (
        0x8000,
        0x4000,
        0x2000,
        0x1000,
    )
    assert (wm.FLAG_READ, wm.FLAG_REPLY, wm.FLAG_ACK) == (0x0800, 0x0400, 0x0100)


def test_init_golden() -> None:
    body = wm.init_body(0x0102, b"chat")
    assert body == b"\x00" * 6 + b"\x01\x02" + b"\x04chat"
    raw = wm.MessagePacket(MID, wm.FLAG_INIT, body).encode()
    assert raw[12:20] == (0x0102).to_bytes(8, "big")
    pkt = wm.decode(raw)
    assert pkt.has(wm.FLAG_INIT) and not pkt.has(wm.FLAG_ACK)
    assert pkt.init() == wm.Init(0x0102, b"chat")


def test_chunk_golden_offsets_match_reference() -> None:
    # The reference's own test writes the chunk size at bytes 28..36 and data from 36 on.
    raw = wm.MessagePacket(MID, wm.FLAG_CHUNK, wm.chunk_body(3, 3900, b"abcdef")).encode()
    assert raw[12:20] == (3).to_bytes(8, "big")
    assert raw[20:28] == (3900).to_bytes(8, "big")
    assert raw[28:36] == (6).to_bytes(8, "big")
    assert raw[36:] == b"abcdef"
    assert wm.decode(raw).chunk() == wm.Chunk(3, 3900, 6, b"abcdef")


def test_chunk_ack_has_no_data() -> None:
    chunk = wm.Chunk(7, 9100, 1300, b"x" * 1300)
    body = wm.chunk_ack_body(chunk)
    assert len(body) == wm.CHUNK_HEADER_SIZE
    ack = wm.decode(wm.MessagePacket(MID, wm.FLAG_CHUNK | wm.FLAG_ACK, body).encode())
    assert ack.chunk().index == 7 and ack.chunk().offset == 9100 and ack.chunk().data == b""


def test_chunk_size_larger_than_data_is_clamped() -> None:
    body = (0).to_bytes(8, "big") + (0).to_bytes(8, "big") + (500).to_bytes(8, "big") + b"ab"
    assert wm.MessagePacket(MID, wm.FLAG_CHUNK, body).chunk() == wm.Chunk(0, 0, 2, b"ab")


def test_done_golden() -> None:
    checksum = bytes(range(32))
    raw = wm.MessagePacket(MID, wm.FLAG_DONE, wm.done_body(5, checksum)).encode()
    assert raw[12:20] == (5).to_bytes(8, "big") and raw[20:52] == checksum
    assert len(raw) == 12 + 8 + 32
    assert wm.decode(raw).done() == wm.Done(5, checksum)


def test_short_bodies_are_typed_errors() -> None:
    with pytest.raises(MalformedPacket):
        wm.decode(b"\x00" * 11)
    with pytest.raises(MalformedPacket):
        wm.MessagePacket(MID, wm.FLAG_INIT, b"\x00" * 8 + b"\x05abc").init()
    with pytest.raises(MalformedPacket):
        wm.MessagePacket(MID, wm.FLAG_CHUNK, b"\x00" * 23).chunk()
    with pytest.raises(MalformedPacket):
        wm.MessagePacket(MID, wm.FLAG_DONE, b"\x00" * 39).done()


def test_topic_too_long_refused() -> None:
    wm.init_body(1, b"t" * 255)
    with pytest.raises(ValueError):
        wm.init_body(1, b"t" * 256)


u64 = st.integers(min_value=0, max_value=2**64 - 1)
ids = st.binary(min_size=8, max_size=8)
flags = st.integers(min_value=0, max_value=0xFFFF)


@given(ids, flags, u64, st.binary(max_size=255))
def test_init_round_trip(mid: bytes, fl: int, length: int, topic: bytes) -> None:
    pkt = wm.decode(wm.MessagePacket(mid, fl, wm.init_body(length, topic)).encode())
    assert (pkt.id, pkt.flags) == (mid, fl)
    assert pkt.init() == wm.Init(length, topic)


@given(ids, u64, u64, st.binary(max_size=2000))
def test_chunk_round_trip(mid: bytes, index: int, offset: int, data: bytes) -> None:
    pkt = wm.decode(
        wm.MessagePacket(mid, wm.FLAG_CHUNK, wm.chunk_body(index, offset, data)).encode()
    )
    assert pkt.chunk() == wm.Chunk(index, offset, len(data), data)


@given(ids, u64, st.binary(min_size=32, max_size=32))
def test_done_round_trip(mid: bytes, count: int, checksum: bytes) -> None:
    pkt = wm.decode(wm.MessagePacket(mid, wm.FLAG_DONE, wm.done_body(count, checksum)).encode())
    assert pkt.done() == wm.Done(count, checksum)


@given(st.binary(max_size=400))
def test_decode_never_crashes(raw: bytes) -> None:
    try:
        pkt = wm.decode(raw)
    except MalformedPacket:
        assert len(raw) < wm.HEADER_SIZE
        return
    assert pkt.encode() == raw[:8] + raw[8:10] + b"\x00\x00" + raw[12:]
    for accessor in (pkt.init, pkt.chunk, pkt.done):
        with contextlib.suppress(MalformedPacket):
            accessor()
