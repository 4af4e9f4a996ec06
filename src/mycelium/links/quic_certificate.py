"""The QUIC listener's certificate: made once per process, pinned by nodes that punch a direct
link to us (docs/nat.md). It is made for the first QUIC connection or hole-punching offer, either
of which needs qh3's core anyway.

The certificate and its key are written out in DER by the few lines below rather than by
``cryptography.x509``: the X.509 and serialization modules (with the native code they touch)
would cost a node about 4 MB of resident memory for one fixed, tiny structure
(``bench/rss.py``). The P-256 key's public point and the ECDSA signature come from qh3, whose
core the QUIC links load anyway and which signs the TLS handshakes with this key: with
``cryptography``'s elliptic curves instead, a node with a QUIC peer held 1.7 MB more at rest.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time

from .qh3_core import EcPrivateKey

# Object identifiers, DER-encoded (tag, length and value).
_ECDSA_WITH_SHA256 = bytes.fromhex("06082a8648ce3d040302")  # 1.2.840.10045.4.3.2
_EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
_PRIME256V1 = bytes.fromhex("06082a8648ce3d030107")  # 1.2.840.10045.3.1.7
_COMMON_NAME = bytes.fromhex("0603550403")  # 2.5.4.3
_SUBJECT_ALT_NAME = bytes.fromhex("0603551d11")  # 2.5.29.17
#: The order n of P-256's base point (SEC 2, secp256r1).
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

DAY = 86400
VALIDITY = 3650 * DAY  # seconds


def self_signed(common_name: str) -> tuple[bytes, bytes]:
    """A new P-256 certificate and its key for this process, as PEM (the reference makes one per
    start, too): X.509 v3, subject and issuer ``CN=common_name`` (its first 64 characters), the
    full name as a DNS subject alternative name, valid from a day ago for ten years, signed with
    ECDSA-SHA256. ``common_name`` is ASCII (our router id)."""
    secret = _p256_scalar()
    algorithm_id = _seq(_EC_PUBLIC_KEY, _PRIME256V1)
    bare = _seq(_integer(0), algorithm_id, _der(0x04, _seq(_integer(1), _der(0x04, secret))))
    key = EcPrivateKey(bare, 256, True)
    point = key.public_key()  # uncompressed: 0x04, x, y
    algorithm = _seq(_ECDSA_WITH_SHA256)
    name = _seq(_der(0x31, _seq(_COMMON_NAME, _der(0x0C, common_name[:64].encode()))))
    now = int(time.time())
    alt_name = _seq(_der(0x82, common_name.encode("ascii")))  # [2] dNSName
    tbs = _seq(
        _der(0xA0, _integer(2)),  # [0] version: v3
        _integer(int.from_bytes(os.urandom(20), "big") >> 1),  # positive, at most 20 bytes
        algorithm,
        name,
        _seq(_time(now - DAY), _time(now + VALIDITY)),
        name,
        _seq(algorithm_id, _der(0x03, b"\x00" + point)),
        _der(0xA3, _seq(_seq(_SUBJECT_ALT_NAME, _der(0x04, alt_name)))),  # [3] extensions
    )
    signature = key.sign(tbs)  # ECDSA with SHA-256, DER-encoded
    certificate = _seq(tbs, algorithm, _der(0x03, b"\x00" + signature))
    ec_private_key = _seq(  # RFC 5915, inside PKCS #8 (RFC 5208), with the public key
        _integer(1), _der(0x04, secret), _der(0xA1, _der(0x03, b"\x00" + point))
    )
    pkcs8 = _seq(_integer(0), algorithm_id, _der(0x04, ec_private_key))
    return _pem("CERTIFICATE", certificate), _pem("PRIVATE KEY", pkcs8)


def _p256_scalar() -> bytes:
    """A uniformly random P-256 private key: 32 random bytes, drawn again in the rare case
    (about 2**-32) that they do not make an integer in [1, n - 1]."""
    while True:
        secret = os.urandom(32)
        if 0 < int.from_bytes(secret, "big") < _P256_ORDER:
            return secret


def fingerprint(certificate_pem: bytes) -> bytes:
    """SHA-256 of a PEM certificate's DER form (what a punching node pins)."""
    body = certificate_pem.split(b"-----BEGIN CERTIFICATE-----", 1)[1]
    der = base64.b64decode(body.split(b"-----END CERTIFICATE-----", 1)[0])
    return hashlib.sha256(der).digest()


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _integer(value: int) -> bytes:
    """A non-negative INTEGER (a leading zero byte keeps a high first bit from reading as a
    sign)."""
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _time(seconds: int) -> bytes:
    """A POSIX time as UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5)."""
    moment = time.gmtime(seconds)
    if moment.tm_year < 2050:
        return _der(0x17, time.strftime("%y%m%d%H%M%SZ", moment).encode())
    return _der(0x18, time.strftime("%Y%m%d%H%M%SZ", moment).encode())


def _pem(label: str, der: bytes) -> bytes:
    text = base64.b64encode(der).decode()
    lines = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()
