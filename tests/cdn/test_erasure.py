"""Reed-Solomon against shards produced by the ``reed-solomon-erasure`` 6.0.0 crate itself
(``ReedSolomon::new(k, m).encode``, data byte j of shard i = (37 i + 11 j + 5) mod 256)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.cdn import erasure

RUST = {
    (1, 1): "05101b26313c47,05101b26313c47",
    (2, 1): "05101b26313c47,2a35404b56616c,5b5aadfcff8611",
    (3, 2): "05101b26313c47,2a35404b56616c,4f5a65707b8691,607f3e1d1cdbba,c184e0808f55cc",
    (4, 4): "05101b26313c47,2a35404b56616c,4f5a65707b8691,747f8a95a0abb6,"
    "cc8485f24adb3c,9ba1418882bb3f,26ce329089c68a,65eb4262fdd685",
}


@pytest.mark.parametrize(("k", "m"), list(RUST))
def test_parity_and_every_recovery_match_the_crate(k: int, m: int) -> None:
    shards = [bytes.fromhex(h) for h in RUST[(k, m)].split(",")]
    assert erasure.encode(shards[:k], m) == shards[k:]
    for kept in itertools.combinations(range(k + m), k):
        available = {i: shards[i] for i in kept}
        assert erasure.reconstruct_data(available, k, k + m) == shards[:k], kept


@given(st.integers(1, 6), st.integers(0, 4), st.binary(min_size=1, max_size=40), st.data())
def test_any_k_shards_rebuild_the_data(k: int, m: int, seed: bytes, data: st.DataObject) -> None:
    size = len(seed)
    shards = [bytes((b + 7 * i) % 256 for b in seed) for i in range(k)]
    all_shards = shards + erasure.encode(shards, m)
    kept = data.draw(st.sets(st.integers(0, k + m - 1), min_size=k, max_size=k))
    rebuilt = erasure.reconstruct_data({i: all_shards[i] for i in kept}, k, k + m)
    assert rebuilt == shards and all(len(s) == size for s in rebuilt)


def test_too_few_or_uneven_shards_are_refused() -> None:
    with pytest.raises(ValueError, match="needed"):
        erasure.reconstruct_data({0: b"ab"}, 2, 3)
    with pytest.raises(ValueError, match="sizes"):
        erasure.reconstruct_data({1: b"ab", 2: b"abc"}, 2, 3)
