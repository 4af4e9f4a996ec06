"""AES-256-GCM ciphers the data plane keeps per address between packets (docs/wire.md §3.2).

qh3's AEAD takes its 12-byte IV when it is made and adds a packet number to its last 8 bytes at
each call. Making one costs the AES key schedule and GHASH table, about half of sealing a small
packet, and far more on a CPU back from idle (40 µs against 30 µs for the call itself). So a
kept destination gets one cipher and numbered nonces, and a kept source one cipher reused while
its sender's nonces share their first 4 bytes, as ours do.
"""

from __future__ import annotations

from typing import Final

from ..crypto import NO_AAD, NONCE_SIZE
from ..qh3_native import AeadAes256Gcm

#: A nonce whose XOR with a cipher's IV is below this differs from it in the packet number only.
_PACKET_NUMBERS: Final = 1 << 64


class Sealer:
    """Sealing to one destination: nonce ``i`` is the random IV XOR ``i``.

    A sealer is made per destination node with a fresh IV and kept while that node is among the
    last 1 024 sealed to (``kept.py``), so the key of a pair of nodes sees 96-bit random IVs,
    each with a run of counted nonces below it: unique within a run, and across runs unless two
    IVs fall within a run's length of each other."""

    __slots__ = ("base", "cipher", "count")

    def __init__(self, key: bytes, iv: bytes) -> None:
        self.cipher = AeadAes256Gcm(key, iv)
        self.base = int.from_bytes(iv, "big")
        #: The packet number of the next nonce.
        self.count = 0

    def seal(self, plaintext: bytes) -> bytes:
        """A body (docs/wire.md §3.4): ``plaintext`` sealed under the next nonce, then the nonce.
        The data plane's batch loop does the same inline."""
        number = self.count
        self.count = number + 1
        nonce = (self.base ^ number).to_bytes(NONCE_SIZE, "big")
        sealed: bytes = self.cipher.encrypt(number, plaintext, NO_AAD)
        return sealed + nonce


class Opener:
    """Opening from one source: the cipher of the last nonce prefix that authenticated.

    A pymycelium sender's nonces keep their prefix, so each packet is one call. A sender with
    random nonces (a Rust node) changes it every packet: that costs the new cipher every packet
    would cost anyway. Only a packet that authenticates replaces the cipher, so forgeries cannot
    make a real sender's packets pay for one."""

    __slots__ = ("_base", "_cipher", "_key")

    def __init__(self, key: bytes, nonce: bytes) -> None:
        self._key = key
        self._cipher = AeadAes256Gcm(key, nonce)
        self._base = int.from_bytes(nonce, "big")

    def open(self, sealed: bytes, nonce: bytes) -> bytes:
        """The plaintext of ``sealed`` (ciphertext and tag); raises ``AuthenticationFailed``."""
        # ``plain`` is typed: where qh3 is not installed (mypyc's isolated build) its calls are
        # Any, and returning Any from this function fails the build's type check.
        plain: bytes
        number = int.from_bytes(nonce, "big") ^ self._base
        if number < _PACKET_NUMBERS:
            plain = self._cipher.decrypt(number, sealed, NO_AAD)
            return plain
        cipher = AeadAes256Gcm(self._key, nonce)
        plain = cipher.decrypt(0, sealed, NO_AAD)
        self._cipher = cipher
        self._base ^= number  # now the nonce's own value
        return plain
