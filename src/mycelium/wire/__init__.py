"""Bytes <-> typed values for everything Mycelium puts on a link. No I/O, no clock."""

from .errors import DecodeError, FramingError, MalformedPacket
from .packet import (
    CONTROL_HEADER,
    DATA_HEADER_SIZE,
    MAX_DATA_BODY,
    DataPacket,
    encode_control,
    encode_data,
)
from .stream import StreamDecoder
from .tlv import Hello, Ihu, RouteRequest, SeqnoRequest, Tlv, Update, decode_tlv, encode_tlv

__all__ = [
    "CONTROL_HEADER",
    "DATA_HEADER_SIZE",
    "MAX_DATA_BODY",
    "DataPacket",
    "DecodeError",
    "FramingError",
    "Hello",
    "Ihu",
    "MalformedPacket",
    "RouteRequest",
    "SeqnoRequest",
    "StreamDecoder",
    "Tlv",
    "Update",
    "decode_tlv",
    "encode_control",
    "encode_data",
    "encode_tlv",
]
