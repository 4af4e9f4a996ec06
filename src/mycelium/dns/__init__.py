"""The DNS forwarder (``--enable-dns``): UDP port 53, answered by the nearest public node."""
