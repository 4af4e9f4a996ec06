"""The examples of docs/embedding.md run as written, and type-check as the real classes."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mycelium
from mycelium.links.endpoint import Endpoint
from mycelium.subnet import Subnet

DOC = Path(__file__).resolve().parents[1] / "docs/embedding.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_first_program_prints_the_reply(tmp_path: Path) -> None:
    script = tmp_path / "first.py"
    script.write_text(blocks()[0])
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "b'HELLO'\n"


def test_the_configuration_example_parses_its_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"mycelium": mycelium}
    exec(blocks()[1], namespace)
    config = namespace["config"]
    assert isinstance(config, mycelium.NodeConfig)
    assert config.key_file == Path("node.key")
    assert config.peers == [Endpoint("tcp", "node.example.org", 9651)]
    assert config.allow_from == [Subnet.parse("5c4:c176::/32")]
    with pytest.raises(ValueError, match=r"did you mean tcp://10\.0\.0\.2:9651"):
        mycelium.NodeConfig(peers=["10.0.0.2:9651"])


async def test_a_key_file_given_as_text_and_the_typed_properties(tmp_path: Path) -> None:
    key = tmp_path / "node.key"
    config = mycelium.NodeConfig.loopback()
    config.identity, config.key_file = None, str(key)
    config = mycelium.NodeConfig(**{**config.__dict__})  # as a user would write it
    async with mycelium.Node(config) as node:
        assert key.stat().st_size == 32
        assert isinstance(node.address, ipaddress.IPv6Address)
        assert node.address in node.subnet and node.subnet.prefixlen == 64
        assert node.public_key == node.identity.public_key.hex()
        assert [e.proto for e in node.listen_endpoints] == ["tcp", "quic"]
        assert 0 <= node.uptime < 60
        assert await node.receive_message() is None
    with pytest.raises(RuntimeError, match="not running"):
        await node.receive_message()


@pytest.mark.skipif(shutil.which("mypy") is None, reason="mypy not installed")
def test_a_type_checker_sees_the_real_classes(tmp_path: Path) -> None:
    script = tmp_path / "typed.py"
    script.write_text(
        blocks()[0].replace("asyncio.run(main())", "")
        + "\nreveal_type(mycelium.Node)\nreveal_type(mycelium.NodeConfig.loopback().peers)\n"
    )
    out = subprocess.run(
        ["mypy", "--strict", "--no-incremental", "--follow-imports=silent", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Success" in out.stdout or "note: Revealed" in out.stdout, out.stdout
    assert "error" not in out.stdout, out.stdout
    assert (
        'Revealed type is "def (config: mycelium.node_config.NodeConfig) -> mycelium.node.Node"'
        in (out.stdout)
    )
