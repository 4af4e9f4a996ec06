"""A node loads only what its configuration uses (bench/rss.py measures what that saves).

At rest, started the way the command line starts it (no config file, no TUN, no peers, the
APIs listening, NAT traversal having published its candidates), none of the modules below is
loaded: the command line's parser (the console script replaces its process once parsed,
tests/api/test_daemon_process.py), the QUIC stack (qh3's Python package and QUIC core; only its
native module is loaded at rest, for the AEADs, qh3_native.py) and the HTTP stack (aiohttp) wait
for their first connection, the QUIC certificate (elliptic curves, hashlib) for the first
connection or punching offer that needs it, and is written without ``cryptography.x509``;
``cryptography`` itself is not loaded at all (X25519 comes from the ``libcrypto`` that ``ssl``
maps, x25519.py); HMAC waits for a STUN message or punched link that carries one; the TUN
device, vsock, TOML, JSON, dates (the logfmt format's), the API facade and the client
subcommands wait for their use, and listening addresses are resolved without the IDNA codec.
Each one then loads, and works, when its feature is used.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LAZY = [
    "click",
    "mycelium.cli.main",
    "qh3.quic.connection",
    "qh3.asyncio",
    "aiohttp",
    "tlslite",
    "cryptography",
    "mycelium.links.quic_certificate",
    "hmac",
    "hashlib",
    "mycelium.tun.linux",
    "mycelium.links.vsock",
    "tomllib",
    "json",
    "datetime",
    "pickle",
    "mycelium.api.facade",
    "mycelium.cli.client",
    "mycelium.cli.message",
    "mycelium.cli.status",
    "encodings.idna",
]

AT_REST = """
import asyncio, sys
from pathlib import Path
import mycelium.cli.serve  # what runs the node once the console script has parsed its flags
from mycelium.daemon import Daemon, node_config
from mycelium.settings import Settings, load_file

LAZY = sys.argv[2].split()

async def main():
    assert load_file(None) == ({}, [], None)  # no config file at the default place
    settings = Settings(
        key_file=Path(sys.argv[1]) / "key.bin",
        no_tun=True,
        disable_peer_discovery=True,
        tcp_listen_port=0,
        quic_listen_port=0,
        api_addr="127.0.0.1:0",
        jsonrpc_addr="127.0.0.1:0",
    )
    async with Daemon(settings, node_config(settings)) as daemon:
        nat = daemon.node.nat
        assert daemon.node.quic_port and nat is not None
        async with asyncio.timeout(10):
            while nat.negotiator.local is None:  # candidates published
                await asyncio.sleep(0.05)
        print(" ".join(m for m in LAZY if m in sys.modules) or "none")

asyncio.run(main())
"""


def run(script: str, *args: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.fixture(scope="module")
def loaded_at_rest(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = run(AT_REST, " ".join(LAZY), tmp_path=tmp_path_factory.mktemp("rest"))
    return [] if out == "none" else out.split()


@pytest.mark.parametrize("module", LAZY)
def test_a_node_at_rest_does_not_load(module: str, loaded_at_rest: list[str]) -> None:
    assert module not in loaded_at_rest


#: module -> a script that uses its feature, checks that it works and prints "loaded" when the
#: module is then in sys.modules (``PRE`` first checks that it was not before).
PRE = "import sys\nMOD = {module!r}\nassert MOD not in sys.modules\n"
USE = {
    "mycelium.tun.linux": """
import mycelium.tun as tun
assert MOD not in sys.modules
assert tun.TunDevice.__name__ == "TunDevice" and tun.DEFAULT_NAME == "mycelium"
""",
    "mycelium.links.vsock": """
import asyncio, dataclasses
from mycelium.node import Node, NodeConfig

async def main():
    config = dataclasses.replace(NodeConfig.loopback(), vsock_listen_port=0)
    async with Node(config):  # listens if the host has vsock, logs why not otherwise
        pass

asyncio.run(main())
""",
    "tomllib": """
from pathlib import Path
from mycelium.settings import load_file
path = Path(sys.argv[1]) / "mycelium.toml"
path.write_text("tcp_listen_port = 9999\\n")
values, warnings, read = load_file(path)
assert values["tcp_listen_port"] == 9999 and read == path, values
""",
    "json": """
from click.testing import CliRunner
from mycelium.cli.main import cli
result = CliRunner().invoke(cli, ["-k", sys.argv[1] + "/key.bin", "generate-keys"])
assert result.exit_code == 0, result.output
result = CliRunner().invoke(cli, ["-k", sys.argv[1] + "/key.bin", "inspect", "--json"])
assert result.exit_code == 0 and '"publicKey"' in result.output, result.output
""",
    "datetime": """
import logging
from mycelium.logs import LogfmtFormatter
record = logging.LogRecord("mycelium", logging.INFO, "x.py", 1, "hello", None, None)
record.created = 0.5
assert LogfmtFormatter().format(record).startswith("ts=1970-01-01T00:00:00.500000Z level=info")
""",
    "mycelium.api.facade": """
import asyncio
from mycelium.api import start_servers
from mycelium.node import Node, NodeConfig

async def main():
    async with Node(NodeConfig.loopback()) as node:
        servers = await start_servers(node, api_addr="127.0.0.1:0", jsonrpc_addr=None)
        assert MOD not in sys.modules
        host, port = servers.addresses["REST"]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /api/v1/admin HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n"
                     "Connection: close\\r\\n\\r\\n".encode())
        answer = await reader.read()
        writer.close()
        await servers.close()
        assert answer.startswith(b"HTTP/1.1 200") and node.identity.address_text.encode() in answer

asyncio.run(main())
""",
    "mycelium.cli.client": """
from click.testing import CliRunner
from mycelium.cli.main import cli
assert MOD not in sys.modules
result = CliRunner().invoke(cli, ["peers", "--help"])
assert result.exit_code == 0 and "list" in result.output, result.output
""",
}


@pytest.mark.parametrize("module", sorted(USE))
def test_using_a_feature_loads_its_module(module: str, tmp_path: Path) -> None:
    script = PRE.format(module=module) + USE[module] + "print(MOD in sys.modules)\n"
    assert run(script, tmp_path=tmp_path) == "True"


QUIC_CORE = """
import sys
from mycelium.links import quic_link
assert quic_link.QuicConnection.__module__ == "qh3.quic.connection"
skipped = [m for m in ("qh3.asyncio", "qh3.h3.connection") if m in sys.modules]
from qh3 import H3Connection, connect  # the rest of the package still loads when asked for
import qh3.asyncio
assert connect is qh3.asyncio.connect and H3Connection.__module__ == "qh3.h3.connection"
print(skipped or "none")
"""


def test_quic_links_load_the_quic_core_without_the_rest_of_qh3(tmp_path: Path) -> None:
    assert run(QUIC_CORE, tmp_path=tmp_path) == "none"
