"""``mycelium inspect`` and ``generate-keys`` (docs/interfaces.md §4; vectors: docs/wire.md
§1.4)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mycelium.cli.main import cli
from mycelium.identity import Identity, load_key_file, save_key_file

KEY = "a47c1d6f2a15b2c670d3a88fbe0aeb301ced12f7bcb4c8e3aa877b20f8559c02"
ADDRESS = "548:c783:d7ce:74a3:9ba1:a0cb:ae21:338d"


def test_inspect_json_vector_through_the_console_script() -> None:
    script = shutil.which("mycelium")
    command = (
        [script] if script else [sys.executable, "-c", "from mycelium.cli.main import main; main()"]
    )
    out = subprocess.run(
        [*command, "inspect", KEY, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout) == {"publicKey": KEY, "address": ADDRESS}


def test_inspect_text_format() -> None:
    result = CliRunner().invoke(cli, ["inspect", KEY])
    assert result.exit_code == 0
    assert result.output == f"Public key: {KEY}\nAddress: {ADDRESS}\n"


def test_inspect_own_key_file(tmp_path: Path) -> None:
    identity = Identity.generate()
    path = tmp_path / "priv_key.bin"
    save_key_file(identity, path)
    result = CliRunner().invoke(cli, ["-k", str(path), "inspect", "--json"])
    assert json.loads(result.output) == {
        "publicKey": identity.public_key.hex(),
        "address": identity.address_text,
    }
    missing = CliRunner().invoke(cli, ["-k", str(tmp_path / "none.bin"), "inspect"])
    assert missing.exit_code != 0 and "Traceback" not in missing.output


def test_inspect_rejects_a_bad_key() -> None:
    result = CliRunner().invoke(cli, ["inspect", "abcd"])
    assert result.exit_code != 0
    assert "Error" in result.output and "Traceback" not in result.output


def test_generate_keys(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "priv_key.bin"
    path.parent.mkdir()  # only the default location's directories are created
    first = CliRunner().invoke(cli, ["-k", str(path), "generate-keys"])
    assert first.exit_code == 0, first.output
    key = load_key_file(path)
    assert key is not None
    again = CliRunner().invoke(cli, ["-k", str(path), "generate-keys"])
    # Like the reference: a warning and exit code 0, and the node's identity is kept.
    assert again.exit_code == 0 and "--force" in again.output
    assert load_key_file(path).public_key == key.public_key  # type: ignore[union-attr]
    forced = CliRunner().invoke(cli, ["-k", str(path), "generate-keys", "--force"])
    assert forced.exit_code == 0
    assert load_key_file(path).public_key != key.public_key  # type: ignore[union-attr]


def test_inspect_json_is_pretty_printed_like_serde() -> None:
    result = CliRunner().invoke(cli, ["inspect", "--json", KEY])
    assert result.exit_code == 0
    assert result.output == f'{{\n  "publicKey": "{KEY}",\n  "address": "{ADDRESS}"\n}}\n'


def test_inspect_all_identity_vectors() -> None:
    vectors = {
        "955bf6bea5e1150fd8e270c12e5b2fc08f08f7c5f3799d10550096cc137d671b": (
            "514:74ce:dd13:296f:ada7:4d2e:9335:acac"
        ),
        "abd16194646defe7ad2318a0f0a69eb2e3fe939c3b0b51cf0bb88bb8028ecd1d": (
            "597:d890:a254:dd45:2bc6:9a47:40d5:ed83"
        ),
    }
    for key, address in vectors.items():
        result = CliRunner().invoke(cli, ["inspect", key, "--json"])
        assert json.loads(result.output)["address"] == address


def test_inspect_a_broken_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(bytes(10))
    result = CliRunner().invoke(cli, ["-k", str(path), "inspect"])
    assert result.exit_code != 0
    assert "10 bytes" in result.output and "Traceback" not in result.output
    spaced = f"{KEY[:2]} {KEY[2:4]} {KEY[4:62]}"
    result = CliRunner().invoke(cli, ["inspect", spaced])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_generate_keys_writes_a_private_32_byte_file(tmp_path: Path) -> None:
    import stat

    path = tmp_path / "a" / "b" / "priv_key.bin"
    path.parent.mkdir(parents=True)
    result = CliRunner().invoke(cli, ["-k", str(path), "generate-keys"])
    assert result.exit_code == 0
    assert len(path.read_bytes()) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    shown = CliRunner().invoke(cli, ["-k", str(path), "inspect", "--json"])
    assert json.loads(shown.output)["publicKey"] == load_key_file(path).public_key.hex()  # type: ignore[union-attr]
    # A file that exists but cannot be a key is only replaced with --force.
    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"short")
    refused = CliRunner().invoke(cli, ["-k", str(broken), "generate-keys"])
    assert refused.exit_code == 0 and broken.read_bytes() == b"short"
    forced = CliRunner().invoke(cli, ["-k", str(broken), "generate-keys", "--force"])
    assert forced.exit_code == 0 and len(broken.read_bytes()) == 32


def test_identity_saved_by_python_inspects_to_the_same_key() -> None:
    identity = Identity.from_secret(bytes(range(32)))
    result = CliRunner().invoke(cli, ["inspect", identity.public_key.hex()])
    assert result.output.splitlines() == [
        f"Public key: {identity.public_key.hex()}",
        f"Address: {identity.address_text}",
    ]
