"""A network simulator: many routers on one virtual clock, every control packet through the
real codecs. Used by the tests, the scale benchmark and ``mycelium sim``."""

from .network import Simulation
from .scenario import Cut, run
from .topology import Link, Topology, TopologyError, load_file, parse_spec

__all__ = [
    "Cut",
    "Link",
    "Simulation",
    "Topology",
    "TopologyError",
    "load_file",
    "parse_spec",
    "run",
]
