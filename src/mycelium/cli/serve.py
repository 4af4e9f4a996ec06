"""Running the node once its command line is parsed, without click.

``mycelium`` without a subcommand parses its flags with click, then replaces its process (exec,
same PID) with ``python -m mycelium.cli.serve``, handing it the parsed settings through an
anonymous in-memory file (``marshal`` of their plain form, ``settings.to_plain``): the running
node holds neither click nor the option and subcommand objects, about 2 MB of its resident
memory (bench/rss.py). Called as a function (tests, an
embedding program invoking the click group) the node runs in the calling process instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import logs
from ..identity import KeyFileError
from ..settings import Settings, SettingsError, from_plain, to_plain

log = logging.getLogger("mycelium")

_COMM = Path("/proc/self/comm")

#: What the parsing process hands over: settings, config-file warnings, the config file read
#: (or None), whether this is ``mycelium-private``.
Launch = tuple[Settings, tuple[str, ...], Path | None, bool]


class StartError(Exception):
    """The node did not start; the message says why (``Error: ...``, exit status 1)."""


def run(launch: Launch) -> None:
    """Run the node until SIGINT or SIGTERM."""
    settings, warnings, config_file, private = launch
    logs.setup(settings.debug, settings.silent, settings.log_format)
    if config_file is not None:
        log.info("loaded config file", extra=logs.fields(path=config_file))
    for warning in warnings:
        log.warning("%s", warning)
    from ..daemon import node_config
    from ..tun.errors import TunError

    try:
        config = node_config(settings, private)
    except SettingsError as exc:
        raise StartError(str(exc)) from None
    from ..links.admission import raise_nofile_limit

    raise_nofile_limit()  # before any listener sizes its connection limits from it
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(settings, config))
    except (KeyFileError, TunError, OSError) as exc:
        raise StartError(str(exc)) from None


def replace_process(launch: Launch) -> None:
    """Exec ``python -m mycelium.cli.serve`` to run ``launch`` (the process's arguments follow
    ``--``, for ``ps``). Returns, having changed nothing, where the interpreter cannot be
    started again: a frozen executable, no ``memfd_create`` (not Linux), or an exec the system
    refuses (a process whose privileges were dropped may no longer reach the interpreter it
    was started with); the node then runs in this process."""
    if getattr(sys, "frozen", False) or not sys.executable or not hasattr(os, "memfd_create"):
        return
    fd = os.memfd_create("mycelium-launch", 0)  # no close-on-exec: the new program reads it
    settings, warnings, config_file, private = launch
    path = None if config_file is None else str(config_file)
    plain = (to_plain(settings), list(warnings), path, private, _COMM.read_text().strip())
    with os.fdopen(os.dup(fd), "wb") as handover:
        marshal.dump(plain, handover)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    args = [sys.executable, "-m", "mycelium.cli.serve", str(fd), "--", *sys.argv[1:]]
    try:
        os.execv(sys.executable, args)
    except OSError:
        os.close(fd)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for our loop only (asyncio's where it is missing): the global policy stays
    asyncio's, so that anything embedding us keeps the loops it expects."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(settings: Settings, config: Any) -> None:
    from ..daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Daemon(settings, config):
        await stop.wait()
        log.info("shutting down")


def main() -> None:
    """``python -m mycelium.cli.serve FD -- ARGS``: run what ``replace_process`` wrote to FD
    (the private hand-over of a process replacing itself, not an interface)."""
    with os.fdopen(int(sys.argv[1]), "rb") as handover:
        settings, warnings, config_file, private, name = marshal.load(handover)
    # The process keeps its name ("mycelium", not "python3") for ps, pgrep and killall.
    with contextlib.suppress(OSError):
        _COMM.write_text(name)
    try:
        path = None if config_file is None else Path(config_file)
        run((from_plain(settings), tuple(warnings), path, private))
    except StartError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
