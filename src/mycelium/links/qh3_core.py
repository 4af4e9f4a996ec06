"""qh3's QUIC core, loaded without the rest of the package (``qh3_native.py`` says why).

Everything the QUIC links take from qh3 is imported through this module.
"""

from __future__ import annotations

# The package's registration first, unexecuted (qh3_native.py), then its core.
from .. import qh3_native  # noqa: F401

# isort: split
from qh3._hazmat import EcPrivateKey
from qh3.quic import events
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import (
    QuicConnection,
    QuicConnectionError,
    QuicConnectionState,
)
from qh3.quic.packet import (
    Buffer,
    QuicPacketType,
    encode_quic_retry,
    pull_quic_header,
)

__all__ = [
    "Buffer",
    "EcPrivateKey",
    "QuicConfiguration",
    "QuicConnection",
    "QuicConnectionError",
    "QuicConnectionState",
    "QuicPacketType",
    "encode_quic_retry",
    "events",
    "pull_quic_header",
]
