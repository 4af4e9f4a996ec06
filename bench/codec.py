"""Codec throughput: frames per second to encode and to decode (through the stream decoder) for
1400-byte data packets and for /64 Update TLVs. Median of several runs.

Reads of 64 KiB model a busy socket, 1448-byte reads one TCP segment at a time (a frame then spans
two reads); "datagram" is one QUIC DATAGRAM per frame; "tlv_only" is decode_tlv without framing.

    python bench/codec.py [--runs 5] [--frames 100000]
"""

from __future__ import annotations

import os
from collections.abc import Callable

from mycelium.identity import RouterId
from mycelium.subnet import Subnet
from mycelium.wire.packet import encode_control, encode_data
from mycelium.wire.stream import StreamDecoder, decode_packet
from mycelium.wire.tlv import Update, decode_tlv, encode_tlv
from runner import argument_parser, median, rates, report


def rate(work: Callable[[], int], runs: int) -> tuple[float, list[float]]:
    results = rates(work, runs)
    return median(results), results


def main() -> None:
    parser = argument_parser(__doc__, "codec")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=100_000)
    args = parser.parse_args()
    n = args.frames

    src, dst = os.urandom(16), os.urandom(16)
    body = os.urandom(1400 + 28)  # a 1400-byte packet, sealed
    data_frame = encode_data(src, dst, 64, body)
    data_stream = data_frame * n
    rid = RouterId(os.urandom(40))
    update = Update(Subnet.parse("548:c783:d7ce:74a3::/64"), 7, 1010, rid)
    update_frame = encode_control(update)
    update_stream = update_frame * n

    def encode_data_frames() -> int:
        for _ in range(n):
            encode_data(src, dst, 64, body)
        return n

    def decode_stream(stream: bytes, chunk: int) -> Callable[[], int]:
        def run() -> int:
            decoder = StreamDecoder()
            got = 0
            for i in range(0, len(stream), chunk):
                got += len(decoder.feed(stream[i : i + chunk]))
            assert got == n
            return got

        return run

    def encode_updates() -> int:
        for _ in range(n):
            encode_control(update)
        return n

    update_value = encode_tlv(update)[2:]

    def decode_update_values() -> int:
        for _ in range(n):
            decode_tlv(8, update_value)
        return n

    def decode_datagrams() -> int:
        for _ in range(n):
            decode_packet(data_frame)
        return n

    figures = {}
    for name, work in (
        ("data_1400_encode", encode_data_frames),
        ("data_1400_decode_64KiB_reads", decode_stream(data_stream, 65536)),
        ("data_1400_decode_1448B_reads", decode_stream(data_stream, 1448)),
        ("data_1400_decode_datagram", decode_datagrams),
        ("update_encode", encode_updates),
        ("update_decode_64KiB_reads", decode_stream(update_stream, 65536)),
        ("update_decode_1448B_reads", decode_stream(update_stream, 1448)),
        ("update_decode_tlv_only", decode_update_values),
    ):
        median, runs = rate(work, args.runs)
        figures[name] = {"frames_per_s_median": round(median), "runs": [round(r) for r in runs]}
        print(f"{name:32} {median:>12,.0f} frames/s")
    mbit = figures["data_1400_decode_64KiB_reads"]["frames_per_s_median"] * len(data_frame) * 8
    print(f"data decode as bandwidth: {mbit / 1e9:.2f} Gbit/s")
    report(figures, args.out)


if __name__ == "__main__":
    main()
