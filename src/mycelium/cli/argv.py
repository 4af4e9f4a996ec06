"""Command-line spellings the reference's clap parser accepts and click does not by itself."""

from __future__ import annotations

#: The reference marks these global: they may follow the subcommand (``inspect -k key.bin``);
#: so may ``--api-addr`` here, which every client subcommand uses.
GLOBAL_VALUE_OPTIONS = ("-k", "--key-file", "-c", "--config-file", "--api-addr")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ``-k/--key-file``, ``-c/--config-file`` and ``--api-addr`` (with their values) to
    the front, where click's group reads them; nothing after ``--`` is touched."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in GLOBAL_VALUE_OPTIONS and i + 1 < len(args):
            front += [arg, args[i + 1]]
            i += 2
            continue
        if any(arg.startswith(f"{name}=") for name in GLOBAL_VALUE_OPTIONS if name[1] == "-"):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest
