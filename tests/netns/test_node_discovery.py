"""Two nodes on one link with no configured peers find each other by link-local discovery
(beacons to ff02::cafe port 9650, docs/wire.md §7) and talk over the overlay."""

from __future__ import annotations

import pytest

from netns.harness import Network, wait_until

pytestmark = pytest.mark.netns


def test_two_nodes_without_peers_find_each_other_by_discovery(net: Network) -> None:
    a, b = net.ns("da"), net.ns("db")
    net.link(a, b)
    settled = wait_until(
        lambda: (
            not any(
                net.exec(ns, "ip", "-6", "addr", "show", "tentative").stdout.strip()
                for ns in (a, b)
            )
        ),
        timeout=10,
    )
    assert settled, "link-local addresses still tentative"
    na = net.start_node(a)
    net.wait_tun(na)
    # Beacons go out at start and every 60 s (docs/wire.md §7): the first node's start beacon finds
    # nobody; the second node's is heard, and the first node dials it.
    nb = net.start_node(b)
    net.wait_tun(nb)
    net.wait_ping(a, nb.address, timeout=40)
    net.wait_ping(b, na.address, timeout=10)
