"""Replay protection for data packets delivered to this node, on the receive side only.

The wire has no sequence numbers: every body ends in a random 12-byte AES-GCM nonce, and that is
all there is to recognise a copy by. So we remember the nonces of packets that *authenticated*
(only a holder of the shared key can make one pass), per source /64, and drop a packet whose
nonce we saw recently. Senders need no change, so the reference and older nodes are unaffected.

Keyed by the source /64, not the full address: neither the source nor the destination address is
covered by the authentication tag, and every address of a /64 opens with the same key, so an
attacker could otherwise replay a body under another source address of the same /64.

Memory is bounded: per source two generations of at most ``GENERATION_SIZE`` nonces each (the
current one rotates into the previous one when full or ``GENERATION_SECONDS`` old), and at most
``MAX_SOURCES`` sources (a new one pushes out the stalest). A replay is therefore caught when it
arrives within ``GENERATION_SECONDS`` of the original *and* fewer than ``GENERATION_SIZE``
authenticated packets from that /64 came in between; anything older gets through
(docs/wire.md §5.3; SECURITY.md, "Replay protection").
"""

from __future__ import annotations

from typing import Final

#: Nonces per generation; a source keeps two (the window is at least this many packets).
GENERATION_SIZE: Final = 1024
#: Age at which the current generation rotates (the window is at least this long).
GENERATION_SECONDS: Final = 30.0
#: Sources (/64s) remembered at once.
MAX_SOURCES: Final = 128


class Window:
    """The nonces of one source /64, in two generations."""

    __slots__ = ("current", "expires", "previous")

    def __init__(self, expires: float) -> None:
        self.current: set[bytes] = set()
        self.previous: set[bytes] = set()
        #: When ``current`` becomes the previous generation (if it did not fill up first).
        self.expires = expires


class ReplayWindow:
    """Recently accepted (source /64, nonce) pairs: ``seen`` checks and records one packet; the
    data plane's batch loop does the same through ``window`` and ``rotate``."""

    __slots__ = (
        "_age",
        "_max_sources",
        "_windows",
        "evicted_sources",
        "generation_size",
        "replayed",
    )

    def __init__(
        self,
        generation_size: int = GENERATION_SIZE,
        generation_seconds: float = GENERATION_SECONDS,
        max_sources: int = MAX_SOURCES,
    ) -> None:
        self.generation_size = generation_size
        self._age = generation_seconds
        self._max_sources = max_sources
        self._windows: dict[bytes, Window] = {}
        #: Packets dropped as replays.
        self.replayed = 0
        #: Sources forgotten to make room for a new one while their window was still live.
        self.evicted_sources = 0

    def seen(self, src: bytes, nonce: bytes, now: float) -> bool:
        """Whether the packet with ``nonce`` (already authenticated) from ``src`` is a copy of a
        recent one. Records it otherwise. Call only after decryption succeeded: a forgery must
        never take a place in the window, or a flood of them could push real nonces out."""
        window = self.window(src, now)
        current = window.current
        held = len(current)
        if nonce not in window.previous:
            current.add(nonce)  # one lookup: a nonce already there leaves the size unchanged
        if len(current) == held:
            self.replayed += 1
            return True
        if held + 1 >= self.generation_size:
            self.rotate(window, now)
        return False

    def window(self, src: bytes, now: float) -> Window:
        """The window of ``src``'s /64 as of ``now`` (created, or rotated when due). The data
        plane takes it once per batch and per source and then does what ``seen`` does inline
        for each packet: unless the nonce is in ``previous``, add it to ``current``; a size
        unchanged means a copy; ``rotate`` once ``current`` holds ``generation_size`` nonces."""
        window = self._windows.get(src[:8])
        if window is None or now >= window.expires:
            window = self._renew(src[:8], window, now)
        return window

    def rotate(self, window: Window, now: float) -> None:
        """A full current generation becomes the previous one."""
        window.previous = window.current
        window.current = set()
        window.expires = now + self._age

    def _renew(self, prefix: bytes, window: Window | None, now: float) -> Window:
        """A window for a new source, or the time-based rotation of an existing one."""
        if window is None:
            return self._new(prefix, now)
        # Both generations older than the window: forget them; otherwise rotate once.
        window.previous = window.current if now < window.expires + self._age else set()
        window.current = set()
        window.expires = now + self._age
        return window

    def _new(self, prefix: bytes, now: float) -> Window:
        windows = self._windows
        if len(windows) >= self._max_sources:
            stale = [p for p, w in windows.items() if now >= w.expires + self._age]
            for p in stale:
                del windows[p]
            if not stale:
                del windows[min(windows, key=lambda p: windows[p].expires)]
                self.evicted_sources += 1
        window = windows[prefix] = Window(now + self._age)
        return window

    def __len__(self) -> int:
        """Nonces remembered (all sources, both generations)."""
        return sum(len(w.current) + len(w.previous) for w in self._windows.values())

    @property
    def sources(self) -> int:
        return len(self._windows)
