"""The data plane's hot modules compiled with mypyc (docs/architecture.md §6).

The sources stay Python and are what runs when compiling is not possible: no C compiler, no
mypyc, ``MYCELIUM_PURE=1``, or an editable install (where a compiled module would hide every
edit of its source). A module that fails to compile is left out, never the install; when the
library all compiled modules share fails, none is compiled.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: Per-packet loops (sealing and opening, stream decoding, the TUN's reads and GRO joins) and
#: the classes they touch for every packet (data packets, replay windows, kept decisions and
#: ciphers, the nonce pool, counters and per-pair statistics).
HOT_MODULES = [
    "src/mycelium/dataplane/plane.py",
    "src/mycelium/wire/stream.py",
    "src/mycelium/tun/gro.py",
    "src/mycelium/wire/packet.py",
    "src/mycelium/tun/linux.py",
    "src/mycelium/dataplane/replay.py",
    "src/mycelium/dataplane/kept.py",
    "src/mycelium/dataplane/ciphers.py",
    "src/mycelium/dataplane/nonces.py",
    "src/mycelium/dataplane/packet_stats.py",
    "src/mycelium/dataplane/counters.py",
    "src/mycelium/node.py",
]


#: The commands that build modules (not those that only write metadata, nor editable_wheel).
BUILDING = {"bdist_wheel", "build", "build_ext", "install"}


def compiled_modules() -> list[Extension]:
    if os.environ.get("MYCELIUM_PURE") == "1" or not BUILDING & set(sys.argv):
        return []
    try:
        from mypyc.build import mypycify

        # The build environment holds mypy and setuptools only: the runtime dependencies'
        # types are unknown there (Any, so some ``type: ignore`` comments go unused), which
        # changes nothing in the compiled loops.
        options = ["--ignore-missing-imports", "--no-warn-unused-ignores"]
        extensions = mypycify([*options, *HOT_MODULES], opt_level="3")
    except (ImportError, SystemExit, Exception) as exc:  # mypyc missing, or a type error
        print(f"pymycelium: not compiling the data plane ({exc}); pure Python", file=sys.stderr)
        return []
    for extension in extensions:
        extension.optional = True  # no C compiler: that module stays pure Python
    return extensions


class BuildCompiled(build_ext):
    """Builds mypyc's shared library first, and the modules only if it built.

    Each compiled module is a small extension that imports one library holding the code of them
    all (``<hash>__mypyc``). Were that library to fail (a compiler turning a new warning into an
    error, or a mypyc bug such as an attribute named ``_thread``) while the small ones built,
    the install would hold modules that cannot be imported."""

    def build_extensions(self) -> None:
        extensions = self.extensions
        shared = [e for e in extensions if e.name.endswith("__mypyc")]
        try:
            for extension in shared:
                self.build_extension(extension)
        except Exception as exc:  # CompileError, LinkError: no compiled module at all
            print(f"pymycelium: not compiling the data plane ({exc}); pure Python", file=sys.stderr)
            self.extensions = []
            return
        self.extensions = [e for e in extensions if e not in shared]
        try:
            super().build_extensions()  # optional: one that fails stays Python
        finally:
            self.extensions = extensions


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": BuildCompiled})
