"""The little of the DNS wire format a forwarder needs: the header and the question's extent.

Queries are forwarded as received and answers returned as received (only the ID is ours to
keep consistent), so nothing beyond the 12-byte header and the question section is parsed.
"""

from __future__ import annotations

import struct

HEADER = struct.Struct("!HHHHHH")
_QR = 0x8000
_OPCODE = 0x7800
_RD = 0x0100
_RA = 0x0080
SERVFAIL = 2


def is_query(data: bytes) -> bool:
    """A message with a header, the QR bit clear and exactly one question."""
    if len(data) < HEADER.size:
        return False
    _, flags, qdcount, _, _, _ = HEADER.unpack_from(data)
    return not flags & _QR and qdcount == 1


def question_end(data: bytes) -> int | None:
    """Offset just past the first question (name, type, class), or None if it is malformed."""
    pos = HEADER.size
    for _ in range(128):  # at most 127 labels fit in a 255-byte name
        if pos >= len(data):
            return None
        size = data[pos]
        if size == 0:
            end = pos + 5
            return end if end <= len(data) else None
        if size & 0xC0:  # no compression pointers in a question we forward
            return None
        pos += 1 + size
    return None


def servfail(query: bytes) -> bytes:
    """A SERVFAIL answer to ``query`` (which ``is_query``), echoing its ID, opcode, RD and
    question."""
    ident, flags, _, _, _, _ = HEADER.unpack_from(query)
    end = question_end(query)
    question = query[HEADER.size : end] if end is not None else b""
    reply_flags = _QR | (flags & (_OPCODE | _RD)) | _RA | SERVFAIL
    return HEADER.pack(ident, reply_flags, 1 if question else 0, 0, 0, 0) + question


def query_id(data: bytes) -> int:
    return int.from_bytes(data[:2], "big")
