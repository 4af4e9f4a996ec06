"""The console script's hand-over to ``python -m mycelium.cli.serve`` (cli/serve.py) where the
system refuses the exec: nothing changes and the node runs in the process that parsed."""

from __future__ import annotations

import os
import sys

import pytest

from mycelium.cli import serve
from mycelium.settings import Settings


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="Linux memfd")
def test_an_exec_the_system_refuses_leaves_the_process_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[list[str]] = []

    def refuse(path: str, args: list[str]) -> None:
        tried.append(args)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "execv", refuse)
    before = sorted(os.listdir("/proc/self/fd"))
    assert serve.replace_process((Settings(), (), None, False)) is None
    assert tried and tried[0][:3] == [sys.executable, "-m", "mycelium.cli.serve"]
    assert sorted(os.listdir("/proc/self/fd")) == before  # the hand-over file is closed
