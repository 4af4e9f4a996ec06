"""What the data plane did with packets, for metrics and tests (plain ints, cheap to bump)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Counters:
    # --- packets read from the TUN (docs/wire.md §9.3) ---
    tun_packets: int = 0
    tun_too_short: int = 0  # < 40 bytes: silent drop
    tun_not_ipv6: int = 0  # version nibble != 6: silent drop
    tun_too_large: int = 0  # > 1400 bytes: never put on the wire (docs/wire.md §4.6)
    tun_local_unreachable: int = 0  # dst in our own /64: ICMP code 3
    tun_bad_source: int = 0  # src outside 400::/7: ICMP code 5
    tun_hop_limit: int = 0  # hop limit < 2: ICMP Time Exceeded
    # --- origin ---
    sent: int = 0  # packets we encrypted and framed (L3 and messages)
    messages_sent: int = 0
    message_too_large: int = 0
    local_messages: int = 0  # messages to our own /64, handed straight back
    # --- route queue (destination /64) ---
    queued: int = 0
    queue_full: int = 0
    queue_released: int = 0
    queue_timeout: int = 0  # packets dropped (with ICMP for our own L3) when a query timed out
    queue_route_lost: int = 0
    # --- forwarding ---
    forwarded: int = 0
    hop_limit_expired: int = 0  # transit or arriving packets with hop limit < 2
    no_route: int = 0
    oob_icmp_sent: int = 0
    oob_icmp_dropped: int = 0  # no key for the original source, or about ourselves
    # --- local delivery ---
    routed_local: int = 0  # for our /64 past the hop-limit step, before decryption
    delivered: int = 0  # L3 packets written to the TUN
    messages_received: int = 0
    icmp_received: int = 0  # OOB ICMP reconstructed for the TUN
    icmp_malformed: int = 0
    icmp_no_key: int = 0
    decrypt_failed: int = 0
    bad_payload: int = 0  # wrong user-data version, unknown type, short L3
    awaiting_key: int = 0  # parked until the sender's route is known
    awaiting_key_dropped: int = 0  # incoming queue full or timed out
    awaiting_key_released: int = 0  # the sender's route appeared
    local_icmp: int = 0  # ICMPv6 errors written to the TUN by us
    icmp_rate_limited: int = 0  # ICMPv6 errors not sent: over the rate limit (either bucket)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
