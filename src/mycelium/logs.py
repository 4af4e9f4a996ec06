"""Log lines as the daemon prints them, and the two helpers every call site uses.

Call sites log a fixed message and pass the details as fields
(``log.info("peer connected", extra=fields(peer=endpoint))``); every format prints the fields as
``key=value`` after the message, so they can be grepped and parsed. Formats, as the reference
names them: ``compact`` (for people), ``logfmt`` (one ``key=value`` record per line, the level
coloured on a terminal) and ``plain`` (logfmt without colour).

``LogLimiter`` keeps repeated events (a peer that flaps, one that stays unreachable) from
filling the log: what it holds back is counted and reported with the next line it lets through.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TextIO

FORMATS = ("compact", "logfmt", "plain")


def fields(**values: object) -> dict[str, Mapping[str, object]]:
    """``extra=`` for a log call: ``key=value`` pairs printed after the message (None skipped)."""
    return {"fields": values}


def _record_fields(record: logging.LogRecord) -> list[tuple[str, object]]:
    values = getattr(record, "fields", None)
    if not isinstance(values, Mapping):
        return []
    return [(k, v) for k, v in values.items() if v is not None]


def logfmt_value(value: object) -> str:
    """A value as logfmt writes it: bare when it has no space, ``=`` or quote, else quoted."""
    if isinstance(value, float):
        value = f"{value:.3g}"
    text = str(value)
    if text and not any(c <= " " or c in '="\\' for c in text):
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


_LEVELS = {
    logging.CRITICAL: "error",
    logging.ERROR: "error",
    logging.WARNING: "warn",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}
_COLOURS = {"error": "31", "warn": "33", "info": "32", "debug": "34"}


class LogfmtFormatter(logging.Formatter):
    """``ts=<RFC 3339> level=info target=<logger> message="..." key=value ...``"""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour
        from datetime import UTC, datetime  # here: only this format needs it

        self._utc, self._datetime = UTC, datetime

    def format(self, record: logging.LogRecord) -> str:
        stamp = self._datetime.fromtimestamp(record.created, self._utc)
        ts = stamp.isoformat(timespec="microseconds")
        level = _LEVELS.get(record.levelno, record.levelname.lower())
        shown = f"\x1b[1;{_COLOURS[level]}m{level}\x1b[0m" if self.colour else level
        parts = [
            f"ts={ts.replace('+00:00', 'Z')}",
            f"level={shown}",
            f"target={logfmt_value(record.name)}",
            f"message={logfmt_value(record.getMessage())}",
        ]
        parts += [f"{key}={logfmt_value(value)}" for key, value in _record_fields(record)]
        if record.exc_info:
            parts.append(f"exception={logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class CompactFormatter(logging.Formatter):
    """``2024-05-01 12:00:00,123  INFO mycelium.node: message key=value``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)5s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extra = _record_fields(record)
        if not extra:
            return line
        return line + " " + " ".join(f"{k}={logfmt_value(v)}" for k, v in extra)


def formatter(log_format: str, stream: TextIO) -> logging.Formatter:
    if log_format == "compact":
        return CompactFormatter()
    colour = log_format == "logfmt" and stream.isatty()
    return LogfmtFormatter(colour=colour)


def setup(debug: bool, silent: bool, log_format: str, stream: TextIO | None = None) -> None:
    """Our loggers at the chosen level; every library's at WARNING at most (``--debug`` is
    about the node, not the libraries under it: netlink and QUIC would log every packet).

    Like ``logging.basicConfig``, adds no handler where the program already set one up (a test
    harness, an embedding application): only the levels are set then."""
    stream = stream or sys.stderr
    level = logging.ERROR if silent else logging.DEBUG if debug else logging.INFO
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    if not root.handlers:
        handler = _Handler(stream)
        handler.setFormatter(formatter(log_format, stream))
        root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    logging.getLogger("mycelium").setLevel(level)


class _Handler(logging.StreamHandler):
    """Ours, to be replaced by a later ``setup``."""


class LogLimiter:
    """At most ``burst`` lines per key in any ``interval`` seconds.

    ``allow(key)`` returns None to hold a line back, otherwise how many lines were held back
    since the last one let through. At most ``max_keys`` keys are remembered (the least
    recently used are forgotten), so strangers cannot grow it.
    """

    def __init__(
        self,
        burst: int,
        interval: float,
        *,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self.max_keys = max_keys
        self._clock = clock
        #: key -> [window start, lines let through in the window, lines held back]
        self._keys: OrderedDict[Hashable, list[Any]] = OrderedDict()

    def allow(self, key: Hashable) -> int | None:
        now = self._clock()
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = [now, 0, 0]
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        if now - state[0] >= self.interval:
            state[0], state[1] = now, 0
        if state[1] >= self.burst:
            state[2] += 1
            return None
        state[1] += 1
        held, state[2] = state[2], 0
        return int(held)

    def forget(self, key: Hashable) -> None:
        self._keys.pop(key, None)
