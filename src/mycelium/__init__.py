"""pymycelium: a Python implementation of the Mycelium end-to-end encrypted IPv6 overlay."""

__version__ = "0.1.0"
#: The reference release whose wire protocol and interfaces this package follows.
REFERENCE_VERSION = "0.7.10"

__all__ = ["REFERENCE_VERSION", "Node", "NodeConfig", "__version__"]


def __getattr__(name: str) -> object:
    """``mycelium.Node`` for embedders, imported on first use: ``mycelium inspect`` stays light."""
    if name in ("Node", "NodeConfig"):
        from . import node

        return getattr(node, name)
    raise AttributeError(f"module 'mycelium' has no attribute {name!r}")
