"""Command-line spellings the reference's clap parser accepts and click does not by itself."""

from __future__ import annotations

import click

#: The reference marks these global: they may follow the subcommand (``inspect -k key.bin``);
#: so may ``--api-addr`` here, which every client subcommand uses.
GLOBAL_VALUE_OPTIONS = ("-k", "--key-file", "-c", "--config-file", "--api-addr")


def normalise(args: list[str]) -> list[str]:
    """The arguments as click's group expects them; nothing after ``--`` is touched.

    * ``-k/--key-file``, ``-c/--config-file`` and ``--api-addr`` (with their values) move to
      the front, where the group reads them.
    * The reference's ``--peers A B C`` (clap ``num_args = 1..``) becomes ``--peers A --peers
      B --peers C``. The first word after ``--peers`` is always its value (a mistyped endpoint
      then gets the parser's hint, not "No such command"); further words are while they look
      like endpoints (they contain a colon, subcommands do not). A ``--peers`` with no value is
      a UsageError, not silently ignored.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        i += 1
        if arg in GLOBAL_VALUE_OPTIONS and i < len(args):
            front += [arg, args[i]]
            i += 1
        elif any(arg.startswith(f"{name}=") for name in GLOBAL_VALUE_OPTIONS if name[1] == "-"):
            front.append(arg)
        elif arg == "--peers":
            start = i
            while i < len(args) and not args[i].startswith("-") and (i == start or ":" in args[i]):
                rest += ["--peers", args[i]]
                i += 1
            if i == start:
                raise click.UsageError(
                    "--peers needs at least one endpoint, e.g. --peers tcp://192.0.2.1:9651"
                )
        else:
            rest.append(arg)
    return front + rest
