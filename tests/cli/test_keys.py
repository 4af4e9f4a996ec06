"""``mycelium inspect`` and ``generate-keys`` (interfaces.md; issue vector)."""

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
