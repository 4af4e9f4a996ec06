"""The ``mycelium`` command: the daemon and the client subcommands."""
