"""schemathesis against a running node, driven by the reference's own api.yaml: no server errors
and no responses outside the documented schemas.

Excluded, and covered by test_messages_api.py instead: the two long-polling message operations
(generated timeouts of years would hold every request open) and deletePeer, whose path parameter
the reference's document describes in a way schemathesis cannot load ("Schema Error").
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import mycelium.api

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "api.yaml"
SCHEMA = SHARED if SHARED.exists() else Path(mycelium.api.__file__).parent / "api.yaml"
ST = shutil.which("st") or shutil.which("schemathesis")
MYCELIUM = shutil.which("mycelium")


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(ST is None or MYCELIUM is None, reason="schemathesis or mycelium not installed")
def test_rest_api_conforms_to_the_reference_openapi(tmp_path: Path) -> None:
    api = free_port(socket.SOCK_STREAM)
    node = subprocess.Popen(
        [
            MYCELIUM,
            "-k",
            str(tmp_path / "key"),
            "--no-tun",
            "--disable-peer-discovery",
            "--tcp-listen-port",
            "0",
            "--quic-listen-port",
            "0",
            "--api-addr",
            f"127.0.0.1:{api}",
            "--jsonrpc-addr",
            f"127.0.0.1:{free_port(1)}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", api)) == 0:
                    break
            time.sleep(0.1)
        run = subprocess.run(
            [
                ST,
                "run",
                str(SCHEMA),
                "--url",
                f"http://127.0.0.1:{api}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "25",
                "--request-timeout",
                "10",
                "--seed",
                "1",
                "--exclude-operation-id",
                "popMessage",
                "--exclude-operation-id",
                "pushMessage",
                "--exclude-operation-id",
                "deletePeer",
            ],
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert node.poll() is None
    finally:
        node.terminate()
        node.wait(timeout=10)
