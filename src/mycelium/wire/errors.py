"""Typed decode errors: the only exceptions a wire decoder may raise."""


class DecodeError(Exception):
    """Input bytes that do not form a valid value."""


class MalformedPacket(DecodeError):
    """One packet or TLV is bad; it is dropped and counted, the stream goes on."""


class FramingError(DecodeError):
    """The outer header is violated; the stream cannot be resynchronised and must be closed."""
