"""CDN metadata codec: byte layouts produced by the reference's own ``cdn-meta`` crate (b5848e6,
encoded with its ``to_binary``), round trips, and a decoder that only ever raises its own error."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_fixtures import encode
from mycelium.cdn import meta

# Metadata::File { content_hash: [1; 16], name: "hello.txt", mime: Some("text/plain"), blocks: [
#   Block { shards: [127.0.0.1:6379 db 7 no auth, [::1]:6380 db 65535 Token("tok")],
#           required_shards: 1, start_offset: 0, end_offset: 4, content_hash: [2; 16],
#           encrypted_hash: [3; 16], nonce: [4; 12] }] }
RUST_FILE = bytes.fromhex(
    "4d43444e010000000001010101010101010101010101010101000000000000000968656c6c6f2e7478740100"
    "0000000000000a746578742f706c61696e00000000000000010000000000000002000000007f00000118eb00"
    "0700000000010000000000000000000000000000000118ecffff01000000000000000000000003746f6b0001"
    "000000000000000000000000000000040202020202020202020202020202020203030303030303030303030303"
    "030303040404040404040404040404"
)
# Metadata::File { content_hash: [9; 16], name: "x", mime: None, blocks: [] }
RUST_FILE_NO_MIME = bytes.fromhex(
    "4d43444e010000000009090909090909090909090909090909000000000000000178000000000000000000"
)
# Metadata::Directory { files: [([5; 16], None), ([6; 16], Some([7; 16]))], name: "dir" }
RUST_DIRECTORY = bytes.fromhex(
    "4d43444e0100000001000000000000000205050505050505050505050505050505000606060606060606060606"
    "060606060601070707070707070707070707070707070000000000000003646972"
)


def test_reference_file() -> None:
    decoded, used = meta.decode(RUST_FILE)
    assert used == len(RUST_FILE)
    assert decoded == meta.File(
        bytes([1]) * 16,
        "hello.txt",
        "text/plain",
        (
            meta.Block(
                (
                    meta.ShardLocation("127.0.0.1", 6379, 7, None),
                    meta.ShardLocation("::1", 6380, 65535, "tok"),
                ),
                1,
                0,
                4,
                bytes([2]) * 16,
                bytes([3]) * 16,
                bytes([4]) * 12,
            ),
        ),
    )
    assert encode(decoded) == RUST_FILE


def test_reference_file_without_mime_and_directory() -> None:
    assert meta.decode(RUST_FILE_NO_MIME) == (
        meta.File(bytes([9]) * 16, "x", None, ()),
        len(RUST_FILE_NO_MIME),
    )
    directory, used = meta.decode(RUST_DIRECTORY)
    assert used == len(RUST_DIRECTORY)
    assert directory == meta.Directory(
        ((bytes([5]) * 16, None), (bytes([6]) * 16, bytes([7]) * 16)), "dir"
    )
    assert encode(directory) == RUST_DIRECTORY


def test_trailing_bytes_are_reported_not_refused() -> None:
    assert meta.decode(RUST_DIRECTORY + b"junk")[1] == len(RUST_DIRECTORY)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"MCDN", "too short"),
        (b"NOPE\x01" + bytes(8), "magic"),
        (b"MCDN\x02" + bytes(8), "version"),
        (b"MCDN\x01\x00\x00\x00\x07", "tag"),
        (RUST_FILE[:-1], "truncated"),
        (RUST_DIRECTORY[:16] + b"\xff" * 8 + RUST_DIRECTORY[24:], "exceeds"),
    ],
)
def test_bad_blobs_are_typed_errors(blob: bytes, message: str) -> None:
    with pytest.raises(meta.MetadataError, match=message):
        meta.decode(blob)


hashes = st.binary(min_size=16, max_size=16)
texts = st.text(max_size=20)
shards = st.builds(
    meta.ShardLocation,
    st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str)),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.none() | texts,
)
blocks = st.builds(
    meta.Block,
    st.lists(shards, max_size=4).map(tuple),
    st.integers(0, 65535),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    hashes,
    hashes,
    st.binary(min_size=12, max_size=12),
)
metadata = st.one_of(
    st.builds(meta.File, hashes, texts, st.none() | texts, st.lists(blocks, max_size=3).map(tuple)),
    st.builds(
        meta.Directory,
        st.lists(st.tuples(hashes, st.none() | hashes), max_size=4).map(tuple),
        texts,
    ),
)


@given(metadata)
def test_round_trip(m: meta.Metadata) -> None:
    blob = encode(m)
    assert meta.decode(blob) == (m, len(blob))


@given(metadata, st.data())
def test_mutations_only_raise_metadata_errors(m: meta.Metadata, data: st.DataObject) -> None:
    blob = bytearray(encode(m))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    with contextlib.suppress(meta.MetadataError):
        meta.decode(bytes(blob[:cut]))
