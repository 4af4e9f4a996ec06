"""The data plane compiled with mypyc (setup.py) passes the same tests as its Python source.

``pip install .`` compiles the hot modules when it can; the editable install CI tests with does
not (setup.py says why). This builds the wheel a user gets, unpacks it, and runs the tests of
the compiled modules against it.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _hot_modules() -> list[str]:
    """setup.py's HOT_MODULES, as module paths without ``src/`` and ``.py``."""
    tree = ast.parse((REPO / "setup.py").read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "HOT_MODULES"
    ]
    return [path.removeprefix("src/").removesuffix(".py") for path in ast.literal_eval(value)]


COMPILED = _hot_modules()


def run(args: list[str], cwd: Path, env: dict[str, str] | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def build_wheel(tmp: Path, env: dict[str, str] | None = None) -> Path:
    """The wheel ``pip install .`` would build, from a copy of the sources (the build leaves
    its ``build/`` directory behind)."""
    source = tmp / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".git", "build", "*.so", "__pycache__", ".*cache", "results"),
    )
    done = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", "../dist", "."], source, env
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (wheel,) = (tmp / "dist").glob("pymycelium-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the install stays pure Python (checked below)")
    tmp = tmp_path_factory.mktemp("compiled")
    wheel = build_wheel(tmp)
    unpacked = tmp / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    return unpacked


def test_the_compiled_modules_declare_their_constants_final() -> None:
    """A module constant that is not ``Final`` is looked up in the module's dict at every read,
    even in compiled code (docs/architecture.md §6): one per packet in the hot loops."""
    plain = []
    for module in COMPILED:
        tree = ast.parse((REPO / "src" / f"{module}.py").read_text())
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.Assign) and ast.unparse(node.value).startswith("TypeVar("):
                targets = []  # a type variable, not a constant
            if isinstance(node, ast.AnnAssign) and "Final" not in ast.unparse(node.annotation):
                targets = [node.target]
            plain += [
                f"{module}: {name.id}"
                for name in targets
                if isinstance(name, ast.Name) and re.fullmatch(r"_?[A-Z][A-Z0-9_]*", name.id)
            ]
    assert "mycelium/dataplane/plane" in COMPILED  # the list was read, not empty
    assert plain == []


def test_the_wheel_holds_the_compiled_modules_and_their_sources(wheel_dir: Path) -> None:
    for module in COMPILED:
        assert list(wheel_dir.glob(f"{module}.cpython-*.so")), module
        assert (wheel_dir / f"{module}.py").is_file(), module  # the fallback ships too
    assert "mycelium/dataplane/plane" in COMPILED  # the list was read, not empty


def test_the_compiled_data_plane_passes_its_tests(wheel_dir: Path) -> None:
    probe = "import mycelium.dataplane.plane as p; print(p.__file__)"
    env = {"PYTHONPATH": f"{wheel_dir}:{REPO / 'tests'}", "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert where.stdout.strip().endswith(".so")
    tests = [
        "tests/dataplane",
        "tests/wire",
        "tests/tun",
        "tests/api/test_api.py",
        "tests/test_node_loopback.py",
        "tests/test_node_pacing.py",
        "tests/test_embedding_doc.py",
    ]
    done = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], REPO, env)
    assert done.returncode == 0, done.stdout[-4000:]


def test_the_compiled_classes_are_made_by_compiled_code(wheel_dir: Path) -> None:
    """A dataclass's generated ``__init__`` stays Python in a compiled module (docs/architecture.md
    §6): a class made per packet writes its own. Counters is made once per data plane."""
    probe = (
        "import importlib, sys, types\n"
        "for name in sys.argv[1:]:\n"
        "    module = importlib.import_module(name.replace('/', '.'))\n"
        "    for cls in vars(module).values():\n"
        "        if isinstance(cls, type) and cls.__module__ == module.__name__:\n"
        "            if isinstance(cls.__dict__.get('__init__'), types.FunctionType):\n"
        "                print(module.__name__, cls.__name__)\n"
    )
    env = {"PYTHONPATH": str(wheel_dir), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", probe, *COMPILED], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n") == ["mycelium.dataplane.counters Counters", ""]


def test_without_mypyc_or_when_asked_the_install_is_pure_python(tmp_path: Path) -> None:
    """``MYCELIUM_PURE=1`` (as a build without mypyc or a compiler) gives the Python modules."""
    wheel = build_wheel(tmp_path, {**os.environ, "MYCELIUM_PURE": "1"})
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "mycelium/dataplane/plane.py" in names
    assert not [n for n in names if n.endswith(".so")]


def test_when_the_shared_library_fails_no_module_is_compiled(tmp_path: Path) -> None:
    """A compiler that fails on mypyc's shared library only (as one that turns a new warning
    into an error would): the modules built without it could not be imported, so none is."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler: nothing is compiled anyway")
    refusing = tmp_path / "cc"
    refusing.write_text(
        f'#!/bin/sh\ncase "$*" in *__native_*) echo refused >&2; exit 1;; esac\n'
        f'exec {compiler} "$@"\n'
    )
    refusing.chmod(0o755)
    wheel = build_wheel(tmp_path, {**os.environ, "CC": str(refusing)})
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    assert not list(unpacked.rglob("*.so"))
    probe = "import mycelium.node, mycelium.dataplane.plane as p; print(p.__file__)"
    env = {"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert where.returncode == 0, where.stderr[-2000:]
    assert where.stdout.strip().endswith("plane.py")
