"""The node's remote interfaces: REST, JSON-RPC and Prometheus metrics, all over one facade."""

from .server import Servers, start_servers

__all__ = ["Servers", "start_servers"]
