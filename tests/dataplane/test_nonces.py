"""The nonce pool: 12 random bytes per packet, drawn 512 at a time, handed out in order."""

from __future__ import annotations

import os

from mycelium.dataplane.nonces import NoncePool


def test_nonces_are_handed_out_in_the_order_drawn_with_one_draw_per_512() -> None:
    draws: list[bytes] = []

    def random_bytes(n: int) -> bytes:
        draws.append(os.urandom(n))
        return draws[-1]

    pool = NoncePool(random_bytes)
    taken = [pool.take() for _ in range(1024)]
    assert len(draws) == 2 and all(len(d) == 12 * 512 for d in draws)
    assert b"".join(taken) == b"".join(draws)
    pool.take()
    assert len(draws) == 3
