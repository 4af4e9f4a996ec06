"""The host side of the overlay: a Linux TUN interface carrying ``400::/7``."""

from .errors import TunError
from .linux import DEFAULT_MTU, DEFAULT_NAME, OVERLAY_PREFIX_LEN, TunDevice

__all__ = ["DEFAULT_MTU", "DEFAULT_NAME", "OVERLAY_PREFIX_LEN", "TunDevice", "TunError"]
