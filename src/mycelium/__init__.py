"""pymycelium: a Python implementation of the Mycelium end-to-end encrypted IPv6 overlay."""

__version__ = "0.1.0"
#: The reference release whose wire protocol and interfaces this package follows.
REFERENCE_VERSION = "0.7.10"
