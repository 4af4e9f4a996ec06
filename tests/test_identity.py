"""Identity: key files, public key, overlay address and /64 (docs/wire.md §1, §2, §13 items 1-5)."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.identity import (
    Identity,
    KeyFileError,
    RouterId,
    load_key_file,
    load_or_create_key_file,
    node_subnet,
    overlay_address,
    overlay_destination,
    parse_public_key,
    save_key_file,
)
from mycelium.subnet import GLOBAL_SUBNET, Subnet

VECTORS = [
    (
        "a47c1d6f2a15b2c670d3a88fbe0aeb301ced12f7bcb4c8e3aa877b20f8559c02",
        "548:c783:d7ce:74a3:9ba1:a0cb:ae21:338d",
        "548:c783:d7ce:74a3::/64",
    ),
    (
        "955bf6bea5e1150fd8e270c12e5b2fc08f08f7c5f3799d10550096cc137d671b",
        "514:74ce:dd13:296f:ada7:4d2e:9335:acac",
        "514:74ce:dd13:296f::/64",
    ),
    (
        "abd16194646defe7ad2318a0f0a69eb2e3fe939c3b0b51cf0bb88bb8028ecd1d",
        "597:d890:a254:dd45:2bc6:9a47:40d5:ed83",
        "597:d890:a254:dd45::/64",
    ),
]


@pytest.mark.parametrize(("public", "address", "subnet"), VECTORS)
def test_blake3_address_vectors(public: str, address: str, subnet: str) -> None:
    import ipaddress

    key = bytes.fromhex(public)
    assert str(ipaddress.IPv6Address(overlay_address(key))) == address
    assert str(node_subnet(key)) == subnet


def test_key_pair_vectors() -> None:
    a = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node A").digest())
    b = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node B").digest())
    assert a.secret.hex().startswith("8c34d013")
    assert a.public_key.hex() == "ec9a8062589c14676c80b9f820673b0dc123f9f96fb11d07ac7d6b8a6c6a1011"
    assert a.address_text == "496:b18:c3a9:20a7:5ffc:f64f:14cc:2d"
    assert b.public_key.hex() == "ca4cd909e0e350ed3efee9560e5f733704f968544a9bcac43785d92ccc9df756"
    assert b.address_text == "514:d8f2:e497:c1d2:e3c9:9e40:94d5:d9f0"


@given(st.binary(min_size=32, max_size=32))
def test_address_rule(public: bytes) -> None:
    import blake3

    digest = blake3.blake3(public).digest(16)
    address = overlay_address(public)
    assert address[0] == (0x05 if bin(digest[0]).count("1") % 2 else 0x04)
    assert address[1:] == digest[1:]
    assert GLOBAL_SUBNET.contains(address)
    assert node_subnet(public) == Subnet.of(address, 64)


def test_router_id_layout_and_text() -> None:
    public = bytes(range(32))
    rid = RouterId.generate(public, bytes.fromhex("0a0b0c0d0e0f"))
    assert len(rid) == 40 and rid[32:34] == b"\x00\x00" and rid.public_key == public
    assert rid.zone == 0
    assert public.hex() in rid.text()
    fresh = {RouterId.generate(public) for _ in range(20)}
    assert len(fresh) == 20  # a new random suffix at every start
    with pytest.raises(ValueError):
        RouterId.generate(public, b"short")


def test_key_file_created_with_0600_and_parents(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "priv_key.bin"
    created = load_or_create_key_file(path)
    assert path.read_bytes() == created.secret and len(created.secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_key_file(path)
    assert again.public_key == created.public_key


def test_key_file_round_trip(tmp_path: Path) -> None:
    identity = Identity.generate()
    path = tmp_path / "k.bin"
    save_key_file(identity, path)
    loaded = load_key_file(path)
    assert loaded is not None and loaded.public_key == identity.public_key
    assert load_key_file(tmp_path / "missing.bin") is None


def test_bad_key_files_give_clear_errors(tmp_path: Path) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(b"\x01" * 31)
    with pytest.raises(KeyFileError, match="31"):
        load_key_file(short)
    directory = tmp_path / "dir.bin"
    directory.mkdir()
    with pytest.raises(KeyFileError):
        load_or_create_key_file(directory)
    if os.geteuid() != 0:  # root reads anything
        unreadable = tmp_path / "unreadable.bin"
        unreadable.write_bytes(b"\x01" * 32)
        unreadable.chmod(0)
        with pytest.raises(KeyFileError):
            load_key_file(unreadable)


def test_parse_public_key() -> None:
    assert parse_public_key(VECTORS[0][0]) == bytes.fromhex(VECTORS[0][0])
    assert parse_public_key(VECTORS[0][0].upper()) == bytes.fromhex(VECTORS[0][0])
    assert parse_public_key(f"  {VECTORS[0][0]}\n") == bytes.fromhex(VECTORS[0][0])
    key = VECTORS[0][0]
    spaced = f"{key[:2]} {key[2:4]} {key[4:62]}"  # 64 characters, but only 31 bytes of hex
    for bad in ("zz", "00" * 31, "00" * 33, spaced, "g" * 64, ""):
        with pytest.raises(ValueError):
            parse_public_key(bad)


LEGACY_README = [  # pre-v0.5.0 BLAKE2b values quoted by the reference README: must NOT come out
    (VECTORS[0][0], "47f:b2c5:a944:4dad:9cb1:da4:8bf7:7e65"),
    (VECTORS[1][0], "54f:b680:ba6e:7ced:355f:346f:d97b:eecb"),
    (VECTORS[2][0], "5c4:c176:bf44:b2ab:5e7e:f6a:b7e2:11ca"),
]


@pytest.mark.parametrize(("public", "stale"), LEGACY_README)
def test_stale_readme_addresses_are_not_produced(public: str, stale: str) -> None:
    import ipaddress

    key = bytes.fromhex(public)
    assert str(ipaddress.IPv6Address(overlay_address(key))) != stale
    # ... they are the old BLAKE2b-128 rule, which proves the vectors are what we think they are.
    old = bytearray(hashlib.blake2b(key, digest_size=16).digest())
    old[0] = 0x04 | (old[0] & 1)
    assert str(ipaddress.IPv6Address(bytes(old))) == stale


def test_worked_example_of_the_spec() -> None:
    import blake3

    key = bytes.fromhex(VECTORS[0][0])
    assert blake3.blake3(key).digest(16).hex().startswith("bf48c783d7ce74a39ba1a0cbae21338d")
    assert bin(0xBF).count("1") == 7 and overlay_address(key)[0] == 0x05


def test_router_id_text_form_and_bytes_semantics() -> None:
    import re

    public = bytes.fromhex(VECTORS[0][0])
    rid = RouterId.generate(public, bytes.fromhex("010203040506"))
    assert rid.text() == f"{VECTORS[0][0]}-0000-010203040506"
    assert re.fullmatch(r"[0-9a-f]{64}-[0-9a-f]{4}-[0-9a-f]{12}", RouterId.generate(public).text())
    assert rid == public + bytes.fromhex("0000010203040506") and isinstance(rid, bytes)
    assert hash(rid) == hash(bytes(rid))
    assert RouterId.generate(public, bytes(6)) != rid  # equality covers all 40 bytes
    for size in (0, 39, 41):
        with pytest.raises(ValueError):
            RouterId(bytes(size))


def test_key_file_bytes_after_the_32nd_are_ignored(tmp_path: Path) -> None:
    secret = hashlib.sha256(b"mycelium wire spec node A").digest()
    path = tmp_path / "long.bin"
    path.write_bytes(secret + b"trailing garbage")
    loaded = load_key_file(path)
    assert loaded is not None and loaded.secret == secret
    assert (
        loaded.public_key.hex()
        == "ec9a8062589c14676c80b9f820673b0dc123f9f96fb11d07ac7d6b8a6c6a1011"
    )
    assert loaded.subnet == Subnet.parse("496:b18:c3a9:20a7::/64")


def test_saving_over_a_world_readable_file_makes_it_private(tmp_path: Path) -> None:
    path = tmp_path / "k.bin"
    path.write_bytes(b"x" * 40)
    path.chmod(0o644)
    identity = Identity.generate()
    save_key_file(identity, path)
    assert path.read_bytes() == identity.secret  # truncated, exactly 32 bytes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unwritable_key_location_is_a_key_file_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(KeyFileError, match="cannot write"):
        save_key_file(Identity.generate(), blocker / "sub" / "priv_key.bin")
    with pytest.raises(KeyFileError):
        load_or_create_key_file(blocker / "priv_key.bin")  # parent is a file


def test_empty_key_file_and_short_secret(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(KeyFileError, match="0 bytes"):
        load_key_file(empty)
    with pytest.raises(KeyFileError):
        load_or_create_key_file(empty)  # a broken key file is never silently replaced
    assert empty.read_bytes() == b""
    with pytest.raises(KeyFileError):
        Identity.from_secret(bytes(31))


def test_default_key_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mycelium.identity import default_key_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_key_path() == tmp_path / "xdg" / "mycelium" / "priv_key.bin"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        default_key_path() == tmp_path / "home" / ".local" / "share" / "mycelium" / "priv_key.bin"
    )


def test_secret_stored_unclamped_and_clamping_is_implicit() -> None:
    secret = bytes([0xFF] * 32)
    clamped = bytearray(secret)
    clamped[0] &= 248
    clamped[31] = (clamped[31] & 127) | 64
    a, b = Identity.from_secret(secret), Identity.from_secret(bytes(clamped))
    assert a.secret == secret and a.public_key == b.public_key


def test_permission_denied_is_a_clear_key_file_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Root reads any file, so the denial is simulated where the file is read.
    path = tmp_path / "priv_key.bin"
    path.write_bytes(bytes(32))

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(
        KeyFileError, match=r"cannot read key file .*priv_key.bin: Permission denied"
    ):
        load_key_file(path)
    with pytest.raises(KeyFileError):
        load_or_create_key_file(path)


def test_a_destination_in_any_spelling_is_the_same_address() -> None:
    identity = Identity.generate()
    spellings = (
        identity.address_text,
        ipaddress.IPv6Address(identity.address),
        identity.address,
        identity.public_key.hex(),
        identity.public_key,
    )
    assert {overlay_destination(s) for s in spellings} == {identity.address}
    for bad in (b"short", "not an address", "zz" * 32):
        with pytest.raises(ValueError):
            overlay_destination(bad)


def test_the_secret_key_stays_out_of_repr() -> None:
    identity = Identity.generate()
    shown = repr(identity) + str(identity) + f"{identity!r}"
    for form in (identity.secret.hex(), repr(identity.secret)[2:-1], str(list(identity.secret))):
        assert form not in shown
    assert "public_key=" in shown
