"""Timers armed for a sans-I/O deadline (wake.call_at) do not spin under uvloop, which keeps
time in whole milliseconds and runs a callback due in under half of one at once."""

from __future__ import annotations

import uvloop

from mycelium import wake


def wake_ups_before(delay: float, arm: str) -> int:
    """How often a component that re-arms until its deadline (as the node does) is woken."""
    loop = uvloop.new_event_loop()
    try:
        # Start right after the clock ticked, so the early part of the wait is a whole tick.
        start = loop.time()
        while loop.time() == start:
            pass
        deadline = loop.time() + delay
        woken = 0

        def on_timer() -> None:
            nonlocal woken
            woken += 1
            if loop.time() < deadline:
                rearm()
            else:
                loop.stop()

        def rearm() -> None:
            if arm == "wake":
                wake.call_at(loop, deadline, on_timer)
            else:
                loop.call_at(deadline, on_timer)

        rearm()
        loop.run_forever()
        return woken
    finally:
        loop.close()


def test_a_deadline_under_a_millisecond_ahead_wakes_at_most_twice() -> None:
    for delay in (0.0002, 0.0004, 0.0007, 0.0012, 0.0033):
        assert wake_ups_before(delay, "wake") <= 2


def test_uvloop_alone_spins_on_such_a_deadline() -> None:
    # What the helper is for: plain call_at wakes the component over and over (the loop's
    # clock only moves once a millisecond) until the deadline is reached.
    assert wake_ups_before(0.0002, "loop") > 2
    assert wake_ups_before(0.0004, "loop") > 2


class ClockLoop:
    """The two calls ``wake.call_at`` makes of a loop, at a fixed time."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.armed: list[float] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: object) -> None:
        self.armed.append(when)


def test_a_deadline_already_due_is_not_moved() -> None:
    # Checked on a fixed clock: uvloop's has whole milliseconds, so the time a callback ran at
    # cannot tell whether it was moved by one.
    loop = ClockLoop(100.0)
    for deadline in (99.0, 100.0, 100.0004, 100.001, 101.0):
        wake.call_at(loop, deadline, print)  # type: ignore[arg-type]
    assert loop.armed == [99.0, 100.0, 100.0 + wake.MIN_DELAY, 100.001, 101.0]
