"""Direct QUIC links between nodes behind NATs, negotiated over the overlay (docs/nat.md)."""
