"""Reed-Solomon erasure coding over GF(2^8), the code of the ``reed-solomon-erasure`` crate the
CDN's uploader uses (docs/extras.md §3.5): a Vandermonde matrix made systematic, field polynomial
0x11D. Any ``k`` of the ``n`` shards rebuild the ``k`` data shards.

The reference gateway needs every shard; with this the gateway needs only the first ``k`` to
arrive. Byte-wise field products go through ``bytes.translate`` with one 256-entry table per
coefficient and sums through big-integer XOR, so the work per byte runs in C.
"""

from __future__ import annotations

_EXP = [0] * 510
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 510):
    _EXP[_i] = _EXP[_i - 255]


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def _power(a: int, n: int) -> int:
    if n == 0:
        return 1
    if a == 0:
        return 0
    return _EXP[(_LOG[a] * n) % 255]


def _inverse(a: int) -> int:
    return _EXP[255 - _LOG[a]]


#: ``_TABLES[c]`` maps every byte x to c·x.
_TABLES = [bytes(mul(c, x) for x in range(256)) for c in range(256)]

Matrix = list[list[int]]


def _multiply(a: Matrix, b: Matrix) -> Matrix:
    out = []
    for row in a:
        result = []
        for c in range(len(b[0])):
            acc = 0
            for r, value in enumerate(row):
                acc ^= mul(value, b[r][c])
            result.append(acc)
        out.append(result)
    return out


def invert(matrix: Matrix) -> Matrix:
    """Gauss-Jordan inversion; ValueError for a singular matrix."""
    size = len(matrix)
    work = [row[:] + [int(i == j) for j in range(size)] for i, row in enumerate(matrix)]
    for col in range(size):
        pivot = next((r for r in range(col, size) if work[r][col]), None)
        if pivot is None:
            raise ValueError("singular matrix")
        work[col], work[pivot] = work[pivot], work[col]
        scale = _inverse(work[col][col])
        work[col] = [mul(scale, v) for v in work[col]]
        for r in range(size):
            factor = work[r][col]
            if r != col and factor:
                work[r] = [v ^ mul(factor, p) for v, p in zip(work[r], work[col], strict=True)]
    return [row[size:] for row in work]


def encoding_matrix(data: int, total: int) -> Matrix:
    """The crate's matrix: Vandermonde rows r^c, times the inverse of its top square."""
    vandermonde = [[_power(r, c) for c in range(data)] for r in range(total)]
    return _multiply(vandermonde, invert(vandermonde[:data]))


def _combine(coefficients: list[int], shards: list[bytes], size: int) -> bytes:
    acc = 0
    for c, shard in zip(coefficients, shards, strict=True):
        if c:
            acc ^= int.from_bytes(shard.translate(_TABLES[c]), "big")
    return acc.to_bytes(size, "big")


def encode(data_shards: list[bytes], parity: int) -> list[bytes]:
    """The ``parity`` shards for equally long ``data_shards``."""
    k = len(data_shards)
    size = len(data_shards[0])
    rows = encoding_matrix(k, k + parity)[k:]
    return [_combine(row, data_shards, size) for row in rows]


def reconstruct_data(shards: dict[int, bytes], data: int, total: int) -> list[bytes]:
    """The ``data`` data shards from any ``data`` of the ``total`` shards (index -> bytes).

    ValueError when fewer than ``data`` shards are given or their sizes differ."""
    if len(shards) < data:
        raise ValueError(f"{len(shards)} shards, {data} needed")
    if all(i in shards for i in range(data)):
        return [shards[i] for i in range(data)]
    present = sorted(shards)[:data]
    size = len(shards[present[0]])
    if any(len(shards[i]) != size for i in present):
        raise ValueError("shards of different sizes")
    matrix = encoding_matrix(data, total)
    decode = invert([matrix[i] for i in present])
    chosen = [shards[i] for i in present]
    return [shards[i] if i in shards else _combine(decode[i], chosen, size) for i in range(data)]
