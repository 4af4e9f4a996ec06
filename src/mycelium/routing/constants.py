"""Timers and limits of the router (docs/routing.md §2), in seconds unless named
otherwise."""

from dataclasses import dataclass

DEFAULT_LINK_COST = 1000

UPDATE_INTERVAL = 300.0
UPDATE_INTERVAL_CS = 30000
#: Interval advertised for a selected route that is infinite and already past expiry (6 ms).
INTERVAL_NOT_REPEATING_CS = 0
RETRACTED_ROUTE_HOLD_TIME = 6.0
SOURCE_HOLD_DURATION = 30 * 60.0

SEQNO_BUMP_TIMEOUT = 4.0
SEQNO_DEDUP_TTL = 60.0
SEQNO_REQUEST_HOP_COUNT = 64

ROUTE_QUERY_TIMEOUT = 15.0
MAX_RR_GENERATION = 16
ROUTE_ALMOST_EXPIRED = 15.0

SIGNIFICANT_METRIC_IMPROVEMENT = 10
BIG_METRIC_CHANGE = 10

#: Our own announcements and the only prefix length the router originates requests for.
NODE_PREFIX_LEN = 64

#: A dead-neighbour check that runs this much later than due means the node itself was not
#: running (stopped, a paused VM, a blocked loop): that stretch is not the neighbours' silence.
PAUSE_THRESHOLD = 1.0


@dataclass(frozen=True, slots=True)
class HelloTimers:
    """How often we say Hello and when a silent neighbour is dead (docs/routing.md §3).

    Any neighbour, Rust or ours, answers every Hello with an IHU, so faster Hellos find a dead
    link sooner on our side without anything changing on the wire but the interval we state.
    """

    #: Seconds between our Hellos to each neighbour.
    interval: float
    #: A neighbour whose last IHU is older than this is dead.
    dead_after: float
    #: How often that is checked.
    check_every: float

    @property
    def interval_cs(self) -> int:
        """The interval stated in our Hellos, in centiseconds."""
        return round(self.interval * 100)

    @property
    def ihu_interval_cs(self) -> int:
        """The interval stated in our IHUs: three Hello intervals, as the reference states."""
        return 3 * self.interval_cs


#: The reference's: a Hello every 20 s, dead after 43 s without an IHU, checked every 10 s.
REFERENCE_HELLO = HelloTimers(20.0, 43.0, 10.0)
#: Ours: a cut link is found in 7 to 11 s instead of 33 to 53 s.
FAST_HELLO = HelloTimers(3.0, 10.0, 1.0)
