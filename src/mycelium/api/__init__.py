"""The node's remote interfaces: REST, JSON-RPC and Prometheus metrics, all over one facade."""
