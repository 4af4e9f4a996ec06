"""Log formats (compact, logfmt, plain), fields, library levels and the repeated-line limiter."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from mycelium import logs


@contextmanager
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without pytest's capture handlers, all restored afterwards."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    ours = logging.getLogger("mycelium").level
    for handler in saved:
        root.removeHandler(handler)
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
        logging.getLogger("mycelium").setLevel(ours)


def emit(log_format: str, *, debug: bool = False, tty: bool = False) -> str:
    stream = io.StringIO()
    stream.isatty = lambda: tty  # type: ignore[method-assign]
    with bare_root():
        logs.setup(debug=debug, silent=False, log_format=log_format, stream=stream)
        log = logging.getLogger("mycelium.links.peer_manager")
        log.info(
            "peer connected",
            extra=logs.fields(
                peer="tcp://[2001:db8::1]:9651", error='a "quoted" = thing', none=None
            ),
        )
        log.debug("a debug line")
        logging.getLogger("quic").info("aioquic's own connection line")
        logging.getLogger("pyroute2").warning("a library warning")
    return stream.getvalue()


def test_logfmt_is_key_value_records() -> None:
    first, warning = emit("logfmt").splitlines()
    assert re.fullmatch(
        r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z level=info "
        r"target=mycelium\.links\.peer_manager "
        r'message="peer connected" peer=tcp://\[2001:db8::1\]:9651 '
        r'error="a \\"quoted\\" = thing"',
        first,
    ), first
    assert "level=warn target=pyroute2" in warning


def test_plain_is_logfmt_without_colour_and_logfmt_colours_only_a_terminal() -> None:
    coloured = emit("logfmt", tty=True)
    assert "level=\x1b[1;32minfo\x1b[0m" in coloured
    plain = emit("plain", tty=True)
    assert "\x1b" not in plain and "level=info" in plain
    assert "\x1b" not in emit("logfmt", tty=False)


def test_compact_is_for_people_with_fields_after_the_message() -> None:
    first = emit("compact").splitlines()[0]
    assert first.endswith(
        "INFO mycelium.links.peer_manager: peer connected peer=tcp://[2001:db8::1]:9651 "
        'error="a \\"quoted\\" = thing"'
    )


def test_debug_is_ours_only_libraries_stay_at_warning() -> None:
    out = emit("compact", debug=True)
    assert "a debug line" in out
    assert "aioquic" not in out  # its logger is "quic", muted whatever the level
    assert "a library warning" in out
    assert "a debug line" not in emit("compact")


def test_setup_keeps_a_handler_the_program_installed() -> None:
    with bare_root() as root:
        theirs = logging.StreamHandler(io.StringIO())
        root.addHandler(theirs)
        logs.setup(debug=True, silent=False, log_format="logfmt", stream=io.StringIO())
        assert root.handlers == [theirs]
        assert logging.getLogger("mycelium").level == logging.DEBUG


def test_exceptions_stay_on_one_logfmt_line() -> None:
    stream = io.StringIO()
    with bare_root():
        logs.setup(debug=False, silent=False, log_format="plain", stream=stream)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("mycelium").exception("failed")
    (line,) = stream.getvalue().splitlines()
    assert 'message=failed exception="Traceback' in line and "RuntimeError: boom" in line


def test_logfmt_values() -> None:
    assert logs.logfmt_value("plain") == "plain"
    assert logs.logfmt_value("") == '""'
    assert logs.logfmt_value("two words") == '"two words"'
    assert logs.logfmt_value("a\nb") == '"a\\nb"'
    assert logs.logfmt_value(0.12345) == "0.123"


def test_limiter_lets_a_burst_through_then_counts_what_it_holds_back() -> None:
    now = [0.0]
    limiter = logs.LogLimiter(2, 60.0, max_keys=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(5)] == [0, 0, None, None, None]
    assert limiter.allow("b") == 0  # keys are independent
    now[0] = 60.0
    assert limiter.allow("a") == 3  # a new window, and what was held back
    limiter.allow("c")  # a third key: the least recently used ("b") is forgotten
    assert set(limiter._keys) == {"a", "c"}
