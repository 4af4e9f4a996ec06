"""What ships besides the code: the licence and metadata, the systemd unit, the container image."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mycelium.cli import serve
from mycelium.cli.main import cli
from mycelium.node import NodeConfig
from mycelium.public_nodes import NODES, PublicNode
from mycelium.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "mycelium.service"


def test_the_licence_is_the_one_the_metadata_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Typing :: Typed" in project["classifiers"] and project["urls"]
    assert (ROOT / "src" / "mycelium" / "py.typed").exists()


def test_the_readme_lists_the_public_nodes_the_flag_uses() -> None:
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| ") and line.count("|") == 5 and "overlay address" not in line
    ]
    assert [PublicNode(*row) for row in rows] == list(NODES)


def unit_service() -> dict[str, list[str]]:
    section: dict[str, list[str]] = {}
    current = None
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            current = line
        elif current == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            section.setdefault(key, []).append(value)
    return section


def test_the_unit_runs_a_node_with_or_without_a_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As systemd would start it: the unit's environment (%S is the state directory's parent)
    and ExecStart's arguments; the key goes into the state directory, no file is required."""
    service = unit_service()
    (command, *args) = shlex.split(service["ExecStart"][0])
    assert command == "mycelium"  # found in systemd's search path, not a hard-coded /usr/local
    state, etc = tmp_path / "var-lib", tmp_path / "etc"
    for assignment in shlex.split(service["Environment"][0]):
        name, value = assignment.split("=", 1)
        value = value.replace("%S", str(state)).replace("/etc", str(etc))
        monkeypatch.setenv(name, value)
    started: list[tuple[NodeConfig, Settings]] = []

    async def fake_serve(settings: Settings, config: NodeConfig) -> None:
        started.append((config, settings))

    monkeypatch.setattr(serve, "_serve", fake_serve)
    (state / "mycelium").mkdir(parents=True)  # StateDirectory=mycelium
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    config, settings = started[0]
    assert config.key_file == state / "mycelium" / "priv_key.bin"
    assert settings.config_file is None and config.peers == []
    (etc / "mycelium").mkdir(parents=True)
    (etc / "mycelium" / "mycelium.toml").write_text("public_peers = true\n")
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert len(started[1][0].peers) == 20  # the file at the default location was read


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("systemd-analyze") or not shutil.which("unshare"),
    reason="needs root, systemd-analyze and unshare",
)
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify``, with a stand-in ``mycelium`` in /usr/local/bin (bind-mounted
    in a private mount namespace: the host's /usr/local/bin is untouched)."""
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "mycelium").write_text("#!/bin/sh\n")
    (stub / "mycelium").chmod(0o755)
    script = f"mount --bind {stub} /usr/local/bin && systemd-analyze verify --man=no {UNIT}"
    out = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    if "mount" in out.stderr and "permission denied" in out.stderr.lower():
        pytest.skip("no mount namespaces here")
    assert out.returncode == 0, out.stderr


def test_the_image_build_context_is_enough_to_build_the_wheel(tmp_path: Path) -> None:
    """What .dockerignore lets through is all the Dockerfile's ``pip wheel .`` needs (the
    engine itself is not needed to check that)."""
    allowed = [
        line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] == "!"
    ]
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            copied.update(Path(p).name for p in line.split()[1:-1])
    assert copied and copied <= set(allowed), (copied, allowed)
    context = tmp_path / "context"
    context.mkdir()
    for name in allowed:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, context / name)
    wheels = tmp_path / "wheels"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(context)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0 and "setuptools" in out.stderr and "find" in out.stderr.lower():
        pytest.skip("no package index to fetch the build backend from")
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = wheels.glob("pymycelium-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mycelium/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return info.returncode == 0


@pytest.mark.skipif(not _docker_engine(), reason="no docker engine")
def test_the_container_image_builds_and_runs() -> None:
    tag = "pymycelium-test:latest"
    build = subprocess.run(
        ["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1200
    )
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        out: Any = subprocess.run(
            ["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0 and out.stdout.startswith("mycelium "), out.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)
