"""TUN failures are typed errors with a hint, never raw OSErrors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mycelium.tun import TunDevice, TunError


def test_missing_device_node() -> None:
    with pytest.raises(TunError) as info:
        TunDevice.open("mycelium", device="/nonexistent/net/tun")
    assert "--no-tun" in str(info.value) and info.value.hint


@pytest.mark.parametrize("name", ["", "a" * 16, "bad/name", "nul\0"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(TunError):
        TunDevice.open(name)


def test_not_a_tun_device(tmp_path: Path) -> None:
    path = tmp_path / "tun"
    path.write_bytes(b"")
    with pytest.raises(TunError):
        TunDevice.open("mycelium", device=str(path))


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="root+setpriv")
def test_unprivileged_user_gets_the_no_tun_hint() -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "from mycelium.tun import TunDevice, TunError\n"
        "print('imported')\n"
        "try:\n    TunDevice.open('mycelium')\n"
        "except TunError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(src)),
        timeout=60,
    )
    if "imported" not in result.stdout:  # e.g. a checkout under a 0700 directory
        pytest.skip(f"the source tree is not readable by uid 65534: {result.stderr[-200:]}")
    assert "--no-tun" in result.stdout, result.stderr
