"""CPU per QUIC packet of a QUIC library's connection, both ends in memory (no sockets): a
client streams 1468-byte frames (full-size data packets, which go on the control stream) to a
server, with the configuration our links use, and every datagram is handed straight across.

Compares the libraries that are importable: qh3 (what the node uses) and aioquic (its
pure-Python ancestor, ``pip install aioquic`` to include it).

    python bench/quic_core.py [--runs 3] [--batches 400]
"""

from __future__ import annotations

import importlib
import ssl
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mycelium.links.quic_certificate import self_signed
from runner import argument_parser, median, report

FRAME = 1468
BATCH = 64
CLIENT, SERVER = ("::1", 1), ("::1", 2)


def certificate() -> tuple[bytes, bytes]:
    """The node's own certificate maker (PEM certificate and key)."""
    return self_signed("bench")


def configuration(library: str, is_client: bool, cert: bytes, key: bytes) -> Any:
    module = importlib.import_module(f"{library}.quic.configuration")
    config = module.QuicConfiguration(
        is_client=is_client,
        alpn_protocols=None,
        verify_mode=ssl.CERT_NONE,
        server_name="dummy.mycelium" if is_client else None,
        max_datagram_frame_size=65535,
        max_datagram_size=1452,
        max_data=10 << 20,
        max_stream_data=10 << 20,
    )
    if not is_client:
        if library == "qh3":
            config.load_cert_chain(cert, key)
        else:
            config.certificate = x509.load_pem_x509_certificate(cert)
            config.private_key = serialization.load_pem_private_key(key, None)
    return config


def one_run(library: str, batches: int) -> dict[str, float]:
    connection = importlib.import_module(f"{library}.quic.connection").QuicConnection
    cert, key = certificate()
    now = 0.0
    client = connection(configuration=configuration(library, True, cert, key))
    client.connect(SERVER, now=now)
    first = client.datagrams_to_send(now=now)
    data = first[0][0]
    server = connection(
        configuration=configuration(library, False, cert, key),
        original_destination_connection_id=data[6 : 6 + data[5]],
    )
    for datagram, _ in first:
        server.receive_datagram(datagram, CLIENT, now=now)

    def across(src: Any, dst: Any, addr: tuple[str, int], now: float) -> int:
        sent = src.datagrams_to_send(now=now)
        for datagram, _ in sent:
            dst.receive_datagram(datagram, addr, now=now)
        return len(sent)

    for _ in range(50):  # the handshake
        now += 0.001
        across(server, client, SERVER, now)
        across(client, server, CLIENT, now)
    while client.next_event() is not None:
        pass
    stream = client.get_next_available_stream_id()
    chunk = b"f" * FRAME * BATCH
    packets = received = 0
    started = time.process_time()
    for _ in range(batches):
        client.send_stream_data(stream, chunk)
        now += 0.0005
        packets += across(client, server, CLIENT, now)
        event = server.next_event()
        while event is not None:
            received += len(getattr(event, "data", b""))
            event = server.next_event()
        across(server, client, SERVER, now)
        while client.next_event() is not None:
            pass
    spent = time.process_time() - started
    return {"us_per_packet": 1e6 * spent / packets, "mb_per_s": received / spent / 1e6}


def main() -> None:
    p = argument_parser(__doc__, "quic_core")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batches", type=int, default=400)
    args = p.parse_args()
    figures: dict[str, Any] = {}
    for library in ("qh3", "aioquic"):
        try:
            importlib.import_module(library)
        except ImportError:
            print(f"{library}: not installed")
            continue
        runs = [one_run(library, args.batches) for _ in range(args.runs)]
        figures[library] = {
            "us_per_packet_both_ends": round(median(r["us_per_packet"] for r in runs), 2),
            "stream_mb_per_s": round(median(r["mb_per_s"] for r in runs), 1),
            "runs": runs,
        }
        print(f"{library:8} {figures[library]['us_per_packet_both_ends']:7.2f} us per QUIC packet")
    report(figures, args.out)


if __name__ == "__main__":
    main()
