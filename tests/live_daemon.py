"""A ``mycelium`` daemon as a real process on loopback (no TUN, no discovery, kernel-chosen TCP
port), its API addresses, and the client subcommands run as processes against it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MAIN = "from mycelium.cli.main import main; main()"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Daemon:
    def __init__(self, tmp_path: Path, *extra: str, key: Path | None = None) -> None:
        self.key = key or tmp_path / "key.bin"
        self.api, self.rpc, self.metrics = (f"127.0.0.1:{free_port()}" for _ in range(3))
        argv = [sys.executable, "-c", MAIN, "-k", str(self.key), "--no-tun", "--disable-quic"]
        argv += ["--disable-peer-discovery", "-t", "0", "--api-addr", self.api]
        argv += ["--jsonrpc-addr", self.rpc, "--metrics-api-address", self.metrics, *extra]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={"XDG_CONFIG_HOME": "/x"}
        )

    def get(self, url: str, timeout: float = 5) -> bytes:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read()  # type: ignore[no-any-return]

    def wait_up(self) -> dict[str, Any]:
        """The REST API's ``/admin`` once all three servers accept connections (they start one
        after the other)."""
        deadline = time.monotonic() + 20
        while True:
            try:
                info = json.loads(self.get(f"http://{self.api}/api/v1/admin", 1))
                for address in (self.rpc, self.metrics):
                    host, port = address.rsplit(":", 1)
                    socket.create_connection((host, int(port)), timeout=1).close()
                return info  # type: ignore[no-any-return]
            except (urllib.error.URLError, ConnectionError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(self.output()) from None
                time.sleep(0.1)

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-c", MAIN, "--api-addr", self.api, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def output(self) -> str:
        """Everything it printed; only once it has exited (the pipe is read to its end)."""
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")

    def stop(self) -> str:
        """SIGTERM, wait, and what it printed."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        return self.output()


@contextmanager
def running(tmp_path: Path, *extra: str, key: Path | None = None) -> Iterator[Daemon]:
    """A daemon that is killed on the way out, whatever happened."""
    daemon = Daemon(tmp_path, *extra, key=key)
    try:
        yield daemon
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        daemon.proc.wait(10)
