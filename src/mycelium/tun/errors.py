"""Why a TUN device could not be created, phrased for the person running the node."""

from __future__ import annotations


class TunError(Exception):
    """The TUN device could not be opened or configured."""

    HINT = "run as root (or with CAP_NET_ADMIN), or start the node with --no-tun"

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = self.HINT if hint is None else hint
        super().__init__(f"{message}; {self.hint}" if self.hint else message)
