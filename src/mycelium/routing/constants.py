"""Timers and limits of the reference router (docs/routing.md §2), in seconds unless named
otherwise."""

HELLO_INTERVAL = 20.0
HELLO_INTERVAL_CS = 2000
IHU_INTERVAL_CS = 6000
DEAD_NEIGHBOUR_THRESHOLD = 43.0
DEAD_NEIGHBOUR_CHECK_INTERVAL = 10.0
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
