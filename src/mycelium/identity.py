"""Node identity: the X25519 key file, public key, overlay address, /64 subnet and router ID."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from .crypto import public_key_of
from .logs import fields
from .subnet import Subnet

log = logging.getLogger(__name__)

KEY_SIZE = 32
ROUTER_ID_SIZE = 40


class KeyFileError(Exception):
    """A key file that cannot be read, is too short, or cannot be written."""


def overlay_address(public_key: bytes) -> bytes:
    """The 16-byte overlay address (inside 400::/7) derived from a public key (BLAKE3 rule)."""
    h = bytearray(blake3.blake3(public_key).digest(length=16))
    h[0] = 0x04 | (h[0].bit_count() & 1)
    return bytes(h)


def node_subnet(public_key: bytes) -> Subnet:
    return Subnet.of(overlay_address(public_key), 64)


def parse_public_key(text: str) -> bytes:
    """Parse the 64-hex-character text form of a public key."""
    text = text.strip()
    if len(text) != 2 * KEY_SIZE:
        raise ValueError(f"a public key is {2 * KEY_SIZE} hex characters, got {len(text)}")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError("a public key must be hexadecimal") from None
    if len(key) != KEY_SIZE:  # fromhex skips inner whitespace: "aa bb…" would be short
        raise ValueError("a public key must be hexadecimal, without spaces")
    return key


def overlay_destination(dst: str | bytes | ipaddress.IPv6Address) -> bytes:
    """The 16-byte overlay address of an address or a public key, in any of their spellings:
    text (an IPv6 address, or 64 hex characters), ``IPv6Address``, or raw (16 or 32 bytes)."""
    if isinstance(dst, ipaddress.IPv6Address):
        return dst.packed
    if isinstance(dst, bytes):
        if len(dst) == 16:
            return dst
        if len(dst) == KEY_SIZE:
            return overlay_address(dst)
        raise ValueError(f"a destination is 16 (address) or 32 (public key) bytes, not {len(dst)}")
    if len(dst) == 2 * KEY_SIZE and ":" not in dst:
        return overlay_address(parse_public_key(dst))
    return ipaddress.IPv6Address(dst).packed


def default_key_path() -> Path:
    """``$XDG_DATA_HOME/mycelium/priv_key.bin``, falling back to ``~/.local/share``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "mycelium" / "priv_key.bin"


class RouterId(bytes):
    """40 bytes: public key, 2-byte zone (always 0), 6 random bytes chosen per process start.

    A ``bytes`` subclass so that it hashes and compares at C speed in the router's tables.
    """

    __slots__ = ()

    def __new__(cls, raw: bytes) -> RouterId:
        if len(raw) != ROUTER_ID_SIZE:
            raise ValueError(f"a router ID is {ROUTER_ID_SIZE} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def generate(cls, public_key: bytes, random_bytes: bytes | None = None) -> RouterId:
        suffix = os.urandom(6) if random_bytes is None else random_bytes
        if len(suffix) != 6:
            raise ValueError("a router ID has 6 random bytes")
        return cls(public_key + b"\x00\x00" + suffix)

    @property
    def public_key(self) -> bytes:
        return bytes(self[:32])

    @property
    def zone(self) -> int:
        return int.from_bytes(self[32:34], "big")

    def text(self) -> str:
        return f"{self[:32].hex()}-{self[32:34].hex()}-{self[34:].hex()}"

    def __repr__(self) -> str:
        return f"RouterId({self.text()})"


@dataclass(frozen=True)
class Identity:
    """A node's key pair and everything derived from it. The secret never shows in ``repr``
    (tracebacks, debug logs and ``print(identity)`` would otherwise leak it)."""

    secret: bytes = field(repr=False)
    public_key: bytes
    address: bytes
    subnet: Subnet

    @classmethod
    def from_secret(cls, secret: bytes) -> Identity:
        if len(secret) < KEY_SIZE:
            raise KeyFileError(f"a secret key is {KEY_SIZE} bytes, got {len(secret)}")
        secret = bytes(secret[:KEY_SIZE])
        public = public_key_of(secret)
        address = overlay_address(public)
        return cls(secret, public, address, Subnet.of(address, 64))

    @classmethod
    def generate(cls) -> Identity:
        return cls.from_secret(os.urandom(KEY_SIZE))

    @property
    def address_text(self) -> str:
        return str(ipaddress.IPv6Address(self.address))


def load_key_file(path: Path) -> Identity | None:
    """The identity stored at ``path``; None when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from exc
    if len(data) < KEY_SIZE:
        raise KeyFileError(
            f"key file {path} holds {len(data)} bytes; a key file holds {KEY_SIZE} bytes"
        )
    return Identity.from_secret(data[:KEY_SIZE])


def save_key_file(identity: Identity, path: Path) -> None:
    """Write the 32 raw secret bytes, mode 0600, creating parent directories."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(identity.secret)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from exc


def load_or_create_key_file(path: Path) -> Identity:
    identity = load_key_file(path)
    if identity is None:
        identity = Identity.generate()
        save_key_file(identity, path)
        log.warning("key file not found: generated a new key", extra=fields(path=path))
    else:
        log.info("using key file", extra=fields(path=path))
    return identity
