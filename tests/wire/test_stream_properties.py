"""Round trips for every packet kind, and a stream decoder that survives any bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium.identity import RouterId
from mycelium.subnet import Subnet
from mycelium.wire.errors import DecodeError
from mycelium.wire.packet import DataPacket, encode_control, encode_data
from mycelium.wire.stream import StreamDecoder
from mycelium.wire.tlv import Hello, Ihu, RouteRequest, SeqnoRequest, Update

u16 = st.integers(0, 0xFFFF)
router_ids = st.binary(min_size=40, max_size=40).map(RouterId)
subnets = st.builds(
    lambda net, plen: Subnet.of(net, plen), st.integers(0, (1 << 128) - 1), st.integers(0, 128)
)
tlvs = st.one_of(
    st.builds(Hello, u16, u16),
    st.builds(Ihu, u16, u16),
    st.builds(Update, subnets, u16, u16, router_ids, u16, st.sampled_from([0, 0x40, 0x80, 0xC0])),
    st.builds(RouteRequest, st.none() | subnets, st.integers(0, 255)),
    st.builds(SeqnoRequest, subnets, u16, router_ids, st.integers(1, 255)),
)
data_packets = st.builds(
    DataPacket,
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 255),
    st.binary(max_size=3000),
)
packets = st.one_of(tlvs, data_packets)


def encode(p: object) -> bytes:
    if isinstance(p, DataPacket):
        return encode_data(p.src, p.dst, p.hop_limit, p.body)
    return encode_control(p)  # type: ignore[arg-type]


@given(st.lists(packets, max_size=8), st.data())
def test_any_packets_in_any_chunking_round_trip(items: list, data: st.DataObject) -> None:
    stream = b"".join(encode(p) for p in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = StreamDecoder()
    out = []
    last = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[last:cut])
        last = cut
    assert out == items
    assert decoder.buffered == 0


@settings(max_examples=300)
@given(st.binary(max_size=4000), st.integers(1, 500))
def test_random_bytes_only_raise_typed_errors_and_terminate(blob: bytes, chunk: int) -> None:
    decoder = StreamDecoder()
    try:
        for i in range(0, len(blob), chunk):
            decoder.feed(blob[i : i + chunk])
    except DecodeError:
        pass
    assert decoder.buffered <= 4 + 36 + 0xFFFF + chunk


@given(st.lists(tlvs, min_size=1, max_size=5), st.integers(0, 4), st.data())
def test_a_corrupted_control_body_loses_only_itself(
    items: list, victim: int, data: st.DataObject
) -> None:
    victim %= len(items)
    frames = [encode_control(t) for t in items]
    frame = bytearray(frames[victim])
    if len(frame) > 8:
        i = data.draw(st.integers(8, len(frame) - 1))
        frame[i] = data.draw(st.integers(0, 255))
    frames[victim] = bytes(frame)
    decoder = StreamDecoder()
    out = decoder.feed(b"".join(frames))
    # Every untouched packet still arrives, in order; the corrupted one is dropped or altered.
    assert out[:victim] == items[:victim]
    tail = out[victim:]
    if len(tail) == len(items) - victim:
        tail = tail[1:]
    assert tail == items[victim + 1 :]
