"""Transports (one module each), the peer manager and link-local discovery."""
