"""Fuzzing every decoder and a live node: unexpected exceptions and desyncs must both be 0.

    PYTHONPATH=src python bench/fuzz.py [--scale 1.0] [--seed 1]

Inputs at scale 1 (1,060,000 in all), random bytes and mutations of valid encodings:

  stream    300,000  StreamDecoder on streams of valid, malformed and random frames, fed whole
                     and in random chunks; both must give what an independent frame-by-frame
                     oracle (decode_packet) gives, and agree on whether the stream is broken
  datagram  100,000  decode_packet (QUIC datagrams)
  tlv       200,000  decode_tlv; what decodes must re-encode to itself (decode o encode o decode)
  data      100,000  DataPlane.from_link and from_tun (headers, bodies, sealed payloads of every
                     user-data type, forged and bit-flipped)
  message   100,000  message packets: decode, its INIT/CHUNK/DONE accessors, MessageEngine.handle
  dns       100,000  the DNS forwarder's parser (is_query, question_end, servfail)
  cdn        50,000  CDN metadata (cdn.meta.decode)
  beacon     50,000  discovery beacons
  live       50,000  a real Node listening on ::1: payloads over fresh TCP connections, sync probes
                     (a Hello after framed garbage on the same connection must get its IHU), and
                     datagrams at its QUIC port

An unexpected exception is anything but the decoder's documented error (``FramingError`` /
``MalformedPacket`` / ``MetadataError``; none at all for the data plane, the message engine and
the DNS parser); in the live node, any exception reaching the event loop or logged with a
traceback. Prints a table and writes bench/results/fuzz.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection

from mycelium.cdn import meta
from mycelium.crypto import KeyCache, SharedKey, shared_secret
from mycelium.dataplane import DataPlane
from mycelium.dataplane import icmp as icmp_module
from mycelium.dns import message as dns
from mycelium.identity import Identity, RouterId
from mycelium.links import admission
from mycelium.links.peer_manager import PeerType
from mycelium.messages.engine import MessageEngine
from mycelium.node import Node, NodeConfig
from mycelium.routing import Forward, Local, Queue
from mycelium.subnet import Subnet
from mycelium.wire import message as wire_message
from mycelium.wire.discovery import Beacon
from mycelium.wire.errors import DecodeError, FramingError, MalformedPacket
from mycelium.wire.packet import DataPacket, encode_control, encode_data
from mycelium.wire.stream import StreamDecoder, decode_packet
from mycelium.wire.tlv import (
    Hello,
    Ihu,
    RouteRequest,
    SeqnoRequest,
    Update,
    decode_tlv,
    encode_tlv,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from cdn_fixtures import encode as encode_metadata  # the tests' metadata encoder

#: Data-plane counters that together count every data packet a link handed in.
DATA_OUTCOMES = (
    "hop_limit_expired",
    "routed_local",
    "forwarded",
    "queued",
    "queue_full",
    "no_route",
)
COUNTS = {
    "stream": 300_000,
    "datagram": 100_000,
    "tlv": 200_000,
    "data": 100_000,
    "message": 100_000,
    "dns": 100_000,
    "cdn": 50_000,
    "beacon": 50_000,
    "live": 50_000,
}


class Tally:
    """Per target: inputs, expected refusals, unexpected exceptions, desyncs (first few kept)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.inputs = 0
        self.refused = 0
        self.crashes = 0
        self.desyncs = 0
        self.examples: list[str] = []
        self.seconds = 0.0

    def crash(self, data: bytes, exc: BaseException) -> None:
        self.crashes += 1
        if len(self.examples) < 5:
            self.examples.append(f"crash {exc!r} on {data[:64].hex()}")
            traceback.print_exception(exc)

    def desync(self, what: str) -> None:
        self.desyncs += 1
        if len(self.examples) < 5:
            self.examples.append(f"desync: {what}")

    def row(self) -> dict[str, object]:
        return {
            "inputs": self.inputs,
            "refused": self.refused,
            "crashes": self.crashes,
            "desyncs": self.desyncs,
            "seconds": round(self.seconds, 1),
            "examples": self.examples,
        }


# --- inputs -------------------------------------------------------------------------------------
def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four random edits: bit flips, byte sets, inserts, deletes, truncation, repeats."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(7)
        pos = rng.randrange(len(out) + 1)
        if choice == 0 and out:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        elif choice == 1 and out:
            out[rng.randrange(len(out))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif choice == 2:
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif choice == 3 and out:
            del out[pos : pos + rng.randint(1, 16)]
        elif choice == 4:
            del out[pos:]
        elif choice == 5 and out:
            end = min(len(out), pos + rng.randint(1, 32))
            out[pos:pos] = out[pos:end]
        else:
            for i in range(pos, min(len(out), pos + 2)):
                out[i] = 0xFF
    return bytes(out)


def subnet(rng: random.Random) -> Subnet:
    return Subnet.of(bytes([0x04 | rng.randrange(2)]) + rng.randbytes(15), rng.choice((64, 64, 48)))


def router_id(rng: random.Random) -> RouterId:
    return RouterId(rng.randbytes(40))


def valid_tlv(rng: random.Random) -> object:
    kind = rng.randrange(5)
    if kind == 0:
        return Hello(rng.randrange(65536), rng.randrange(65536))
    if kind == 1:
        return Ihu(rng.randrange(65536), rng.randrange(65536))
    if kind == 2:
        return Update(subnet(rng), rng.randrange(65536), rng.randrange(65536), router_id(rng))
    if kind == 3:
        return RouteRequest(None if rng.random() < 0.3 else subnet(rng), rng.randrange(256))
    return SeqnoRequest(subnet(rng), rng.randrange(65536), router_id(rng), rng.randint(1, 255))


def control_frame(rng: random.Random, value: bytes, tlv_type: int, declared: int) -> bytes:
    """A control frame whose babel envelope is consistent, whatever the TLV inside says."""
    tlv = bytes((tlv_type, declared & 0xFF)) + value
    return b"\x01\x01\x00\x00" + struct.pack("!BBH", 42, 3, len(tlv)) + tlv


def random_frame(rng: random.Random) -> bytes:
    kind = rng.randrange(10) if rng.random() < 0.97 else 9
    if kind < 3:
        return encode_control(valid_tlv(rng))  # type: ignore[arg-type]
    if kind < 5:
        body = rng.randbytes(rng.randrange(120))
        return encode_data(rng.randbytes(16), rng.randbytes(16), rng.randrange(256), body)
    if kind < 8:  # framed, but the TLV inside is garbage: skipped, the stream stays in sync
        value = rng.randbytes(rng.randrange(60))
        declared = len(value) if rng.random() < 0.5 else rng.randrange(256)
        return control_frame(rng, value, rng.choice((4, 5, 8, 9, 10, rng.randrange(256))), declared)
    if kind < 9:  # a valid TLV with one byte of its value changed: framing intact
        frame = bytearray(encode_control(valid_tlv(rng)))  # type: ignore[arg-type]
        frame[rng.randrange(10, len(frame))] = rng.randrange(256)
        return bytes(frame)
    return mutate(rng, encode_control(valid_tlv(rng))) if rng.random() < 0.5 else rng.randbytes(8)


def random_stream(rng: random.Random) -> bytes:
    frames = [random_frame(rng) for _ in range(rng.randint(1, 12))]
    data = b"".join(frames)
    return mutate(rng, data) if rng.random() < 0.2 else data


# --- targets ------------------------------------------------------------------------------------
def oracle(data: bytes) -> tuple[list[object], bool]:
    """Frame by frame with decode_packet: (packets, whether the stream is broken)."""
    packets: list[object] = []
    pos = 0
    while len(data) - pos > 4:
        if data[pos] != 1 or data[pos + 1] not in (0, 1):
            return packets, True
        if data[pos + 1] == 0:
            if len(data) - pos < 8:
                break
            size = 40 + ((int.from_bytes(data[pos + 4 : pos + 8], "big") >> 8) & 0xFFFF)
        else:
            if len(data) - pos < 8:
                break
            size = 8 + int.from_bytes(data[pos + 6 : pos + 8], "big")
        if len(data) - pos < size:
            break
        with contextlib.suppress(MalformedPacket):  # a bad TLV in a sound frame is skipped
            packets.append(decode_packet(data[pos : pos + size]))
        pos += size
    return packets, False


def feed(data: bytes, cuts: list[int]) -> tuple[list[object], bool]:
    decoder = StreamDecoder()
    out: list[object] = []
    start = 0
    for cut in [*cuts, len(data)]:
        try:
            out += decoder.feed(data[start:cut])
        except FramingError:
            return out, True
        start = cut
    return out, False


def fuzz_stream(rng: random.Random, tally: Tally) -> None:
    data = random_stream(rng)
    expected, broken = oracle(data)
    cuts = sorted(rng.sample(range(1, len(data)), max(0, min(len(data) - 1, rng.randint(0, 8)))))
    tally.refused += broken
    for chunks in ([], cuts):
        try:
            got, failed = feed(data, chunks)
        except Exception as exc:
            tally.crash(data, exc)
            return
        if failed != broken:
            tally.desync(f"broken={failed}, oracle says {broken}: {data[:48].hex()}")
            return
        if failed:
            if got != expected[: len(got)]:  # what came before the error is what the oracle has
                tally.desync(f"packets before the framing error differ: {data[:48].hex()}")
        elif got != expected:
            tally.desync(f"{len(got)} packets, the oracle has {len(expected)}: {data[:48].hex()}")
            return


def fuzz_datagram(rng: random.Random, tally: Tally) -> None:
    data = random_frame(rng) if rng.random() < 0.7 else rng.randbytes(rng.randrange(80))
    if rng.random() < 0.5:
        data = mutate(rng, data)
    try:
        decode_packet(data)
    except DecodeError:
        tally.refused += 1
    except Exception as exc:
        tally.crash(data, exc)


def fuzz_tlv(rng: random.Random, tally: Tally) -> None:
    if rng.random() < 0.5:
        encoded = encode_tlv(valid_tlv(rng))  # type: ignore[arg-type]
        encoded = mutate(rng, encoded) if rng.random() < 0.8 else encoded
        tlv_type, value = (encoded[0], encoded[2:]) if len(encoded) >= 2 else (0, b"")
    else:
        tlv_type, value = rng.randrange(256), rng.randbytes(rng.randrange(80))
    try:
        tlv = decode_tlv(tlv_type, value)
    except MalformedPacket:
        tally.refused += 1
        return
    except Exception as exc:
        tally.crash(bytes([tlv_type]) + value, exc)
        return
    try:
        again = encode_tlv(tlv)
        if decode_tlv(again[0], again[2:]) != tlv:
            tally.desync(f"TLV {tlv!r} does not survive re-encoding")
    except Exception as exc:
        tally.crash(bytes([tlv_type]) + value, exc)


class Routes:
    """Routes to two known identities and a queue for everything else (the data-plane contract)."""

    version = 0  # its routes never change

    def __init__(self, own: Identity, known: list[Identity]) -> None:
        self.versioned = self
        self.own = own.address[:8]
        self.known = {i.address[:8]: i.public_key for i in known}

    def route(self, dst: bytes, now: float, origin: bool = False) -> object:
        prefix = dst[:8]
        if prefix == self.own:
            return Local()
        key = self.known.get(prefix)
        if key is not None:
            return Forward(prefix, key)
        return Queue(Subnet.of(dst, 64))

    def public_key_for(self, address: bytes) -> bytes | None:
        return self.known.get(address[:8])

    def request_route(self, address: bytes, now: float) -> None:
        pass


class DataTarget:
    def __init__(self, rng: random.Random) -> None:
        self.me, self.a, self.b = (Identity.from_secret(rng.randbytes(32)) for _ in range(3))
        routes = Routes(self.me, [self.a, self.b])
        self.plane = DataPlane(self.me, routes, KeyCache(self.me.secret))  # type: ignore[arg-type]
        self.key = SharedKey(shared_secret(self.a.secret, self.me.public_key))
        self.now = 0.0

    def inner(self, rng: random.Random) -> bytes:
        kind = rng.randrange(4)
        if kind == 0:  # an IPv6 packet
            payload = rng.randbytes(rng.randrange(60))
            header = struct.pack("!IHBB", 0x60000000, len(payload), 58, rng.randrange(256))
            return b"\x01\x00\x00\x00" + header + self.a.address + self.me.address + payload
        if kind == 1:  # a message packet
            return b"\x01\x01\x00\x00" + rng.randbytes(rng.randrange(80))
        if kind == 2:  # an out-of-band ICMP, quoting something
            original = self.key.seal(rng.randbytes(rng.randrange(60)))
            packet = icmp_module.icmpv6_packet(
                self.a.address, self.me.address, 64, rng.choice((1, 3, 128)), rng.randrange(8),
                original,
            )  # fmt: skip
            return b"\x01\x02\x00\x00" + self.me.address + packet
        return rng.randbytes(rng.randrange(70))

    def __call__(self, rng: random.Random, tally: Tally) -> None:
        self.now += 0.001
        src = rng.choice((self.a.address, self.b.address, rng.randbytes(16)))
        dst = rng.choice((self.me.address, self.a.address, rng.randbytes(16)))
        body = self.key.seal(self.inner(rng)) if rng.random() < 0.7 else rng.randbytes(80)
        if rng.random() < 0.4:
            body = mutate(rng, body)
        packet = DataPacket(src, dst, rng.randrange(256), body)
        tun = mutate(rng, b"\x60" + rng.randbytes(39) + rng.randbytes(rng.randrange(100)))
        try:
            self.plane.from_link([packet], self.now)
            if rng.random() < 0.3:
                self.plane.from_tun([tun], self.now)
            if rng.random() < 0.01:
                self.plane.tick(self.now + 20)
            self.plane.take_to_tun()
            self.plane.take_link_batches()
            self.plane.take_messages()
        except Exception as exc:
            tally.crash(packet.body, exc)


class MessageTarget:
    def __init__(self, rng: random.Random) -> None:
        me = Identity.from_secret(rng.randbytes(32))
        self.engine = MessageEngine(me.address, me.public_key, lambda address: None)
        self.me = me.address
        self.now = 0.0

    def packet(self, rng: random.Random) -> bytes:
        mid = rng.randbytes(8) if rng.random() < 0.5 else bytes(8)
        w = wire_message
        flags = rng.choice((
            w.FLAG_INIT, w.FLAG_CHUNK, w.FLAG_DONE, w.FLAG_READ, w.FLAG_ABORTED,
            w.FLAG_ACK | w.FLAG_INIT, w.FLAG_ACK | w.FLAG_CHUNK, w.FLAG_REPLY | w.FLAG_INIT,
            rng.randrange(65536),
        ))  # fmt: skip
        if flags & 0x8000:
            body = wire_message.init_body(rng.randrange(1 << 20), rng.randbytes(rng.randrange(20)))
        elif flags & 0x1000:
            body = wire_message.chunk_body(rng.randrange(4), rng.randrange(1 << 20),
                                           rng.randbytes(rng.randrange(100)))  # fmt: skip
        elif flags & 0x4000:
            body = wire_message.done_body(rng.randrange(4), rng.randbytes(32))
        else:
            body = rng.randbytes(rng.randrange(40))
        return wire_message.MessagePacket(mid, flags, body).encode()

    def __call__(self, rng: random.Random, tally: Tally) -> None:
        self.now += 0.01
        data = self.packet(rng)
        if rng.random() < 0.5:
            data = mutate(rng, data)
        try:
            packet = wire_message.decode(data)
            for accessor in (packet.init, packet.chunk, packet.done):
                with contextlib.suppress(MalformedPacket):
                    accessor()
        except MalformedPacket:
            tally.refused += 1
        except Exception as exc:
            tally.crash(data, exc)
        try:
            self.engine.handle(rng.randbytes(16), self.me, data, self.now)
            if rng.random() < 0.01:
                self.engine.tick(self.now + 10)  # type: ignore[attr-defined]
            self.engine.take_outgoing()  # type: ignore[attr-defined]
        except Exception as exc:
            tally.crash(data, exc)


def dns_query(rng: random.Random) -> bytes:
    sizes = [rng.randint(1, 20) for _ in range(rng.randint(1, 4))]
    labels = b"".join(bytes([n]) + rng.randbytes(n) for n in sizes)
    question = labels + b"\x00" + struct.pack("!HH", rng.choice((1, 28, 255)), 1)
    return dns.HEADER.pack(rng.randrange(65536), 0x0100, 1, 0, 0, 0) + question


def fuzz_dns(rng: random.Random, tally: Tally) -> None:
    data = dns_query(rng)
    data = mutate(rng, data) if rng.random() < 0.8 else data
    try:
        if dns.is_query(data):
            dns.servfail(data)
        else:
            tally.refused += 1
        dns.question_end(data)
        dns.query_id(data)
    except Exception as exc:
        tally.crash(data, exc)


def metadata(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        files = tuple(
            (rng.randbytes(16), rng.randbytes(16) if rng.random() < 0.5 else None)
            for _ in range(rng.randrange(4))
        )
        return encode_metadata(meta.Directory(files, "dir"))
    shards = tuple(
        meta.ShardLocation(rng.choice(("127.0.0.1", "2001:db8::1")), rng.randrange(65536),
                           rng.randrange(16), "tok" if rng.random() < 0.2 else None)
        for _ in range(rng.randrange(4))
    )  # fmt: skip
    blocks = tuple(
        meta.Block(shards, rng.randrange(4), 0, rng.randrange(1 << 30), rng.randbytes(16),
                   rng.randbytes(16), rng.randbytes(12))
        for _ in range(rng.randrange(3))
    )  # fmt: skip
    return encode_metadata(meta.File(rng.randbytes(16), "f.bin", "text/plain", blocks))


def fuzz_cdn(rng: random.Random, tally: Tally) -> None:
    data = mutate(rng, metadata(rng)) if rng.random() < 0.9 else rng.randbytes(rng.randrange(100))
    try:
        meta.decode(data)
    except meta.MetadataError:
        tally.refused += 1
    except Exception as exc:
        tally.crash(data, exc)


def fuzz_beacon(rng: random.Random, tally: Tally) -> None:
    data = Beacon(rng.randrange(65536), router_id(rng)).encode()
    data = mutate(rng, data) if rng.random() < 0.8 else data
    try:
        Beacon.decode(data)
    except DecodeError:
        tally.refused += 1
    except Exception as exc:
        tally.crash(data, exc)


# --- the live node ------------------------------------------------------------------------------
class LiveNode:
    """A Node on ::1 in its own thread and event loop; counts whatever escapes to the loop."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._loop_error)
        self.node: Node | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        handler = _TracebackCounter(self.errors)
        logging.getLogger("mycelium").addHandler(handler)
        logging.getLogger("asyncio").addHandler(handler)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        self.errors.append(str(context.get("exception") or context.get("message")))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.node = Node(NodeConfig.loopback())
        self.loop.run_until_complete(self.node.start())
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> tuple[int, int]:
        self._thread.start()
        self._ready.wait(30)
        assert self.node is not None and self.node.quic_port is not None
        return self.node.tcp_port, self.node.quic_port

    def stop(self) -> None:
        assert self.node is not None
        asyncio.run_coroutine_threadsafe(self.node.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class _TracebackCounter(logging.Handler):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


def ihu_after(sock: socket.socket, timeout: float = 5.0) -> bool:
    decoder = StreamDecoder()
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, OSError):
            return False
        if not data:
            return False
        try:
            if any(isinstance(p, Ihu) for p in decoder.feed(data)):
                return True
        except FramingError:
            return False
    return False


def fuzz_live(rng: random.Random, tally: Tally, tcp_port: int, quic_port: int) -> None:
    """One input: a payload on a fresh connection, a sync probe, or a datagram at QUIC."""
    kind = rng.random()
    if kind < 0.15:
        if rng.random() < 0.5:
            config = QuicConfiguration(is_client=True, verify_mode=ssl.CERT_NONE)
            conn = QuicConnection(configuration=config)
            conn.connect(("::1", quic_port), now=0.0)
            datagram = mutate(rng, conn.datagrams_to_send(now=0.0)[0][0])
        else:
            datagram = rng.randbytes(rng.randrange(1, 1500))
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
            udp.sendto(datagram, ("::1", quic_port))
        return
    try:
        sock = socket.create_connection(("::1", tcp_port), timeout=5)
    except OSError:
        tally.refused += 1  # over the per-source limit while earlier ones are being closed
        return
    with sock:
        if kind < 0.45:  # sync probe: garbage TLVs inside valid frames, then a Hello
            garbage = b"".join(
                control_frame(rng, rng.randbytes(rng.randrange(50)), rng.randrange(256),
                              rng.randrange(256))
                for _ in range(rng.randint(1, 8))
            )  # fmt: skip
            try:
                sock.sendall(encode_control(Hello(1)) + garbage + encode_control(Hello(2)))
            except OSError as exc:
                tally.desync(f"probe refused: {exc!r}")
                return
            if not ihu_after(sock):
                tally.desync(f"no IHU after framed garbage {garbage[:40].hex()}")
            return
        payload = random_stream(rng) if rng.random() < 0.7 else rng.randbytes(rng.randrange(4096))
        if rng.random() < 0.5:
            payload = encode_control(Hello(0)) + payload  # admitted first: reaches the router
        try:
            sock.sendall(payload)
        except OSError:
            tally.refused += 1


# --- driver -------------------------------------------------------------------------------------
def run(name: str, count: int, step: Callable[[random.Random, Tally], None], seed: int) -> Tally:
    rng = random.Random(f"{seed}-{name}")
    tally = Tally(name)
    started = time.perf_counter()
    for _ in range(count):
        step(rng, tally)
        tally.inputs += 1
    tally.seconds = time.perf_counter() - started
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = {name: max(1, int(n * args.scale)) for name, n in COUNTS.items()}
    seed_rng = random.Random(args.seed)
    steps: dict[str, Callable[[random.Random, Tally], None]] = {
        "stream": fuzz_stream,
        "datagram": fuzz_datagram,
        "tlv": fuzz_tlv,
        "data": DataTarget(seed_rng),
        "message": MessageTarget(seed_rng),
        "dns": fuzz_dns,
        "cdn": fuzz_cdn,
        "beacon": fuzz_beacon,
    }
    tallies = [run(name, counts[name], step, args.seed) for name, step in steps.items()]

    # One client address opens every connection, one after the other: no per-source limit here.
    admission.MAX_PER_SOURCE = counts["live"]
    live = LiveNode()
    tcp_port, quic_port = live.start()
    step = lambda r, t: fuzz_live(r, t, tcp_port, quic_port)  # noqa: E731
    tally = run("live", counts["live"], step, args.seed)
    time.sleep(1)
    assert live.node is not None
    alive = socket.create_connection(("::1", tcp_port), timeout=5)
    alive.sendall(encode_control(Hello(7)))
    if not ihu_after(alive):
        tally.desync("the node no longer answers a valid peer after the fuzzing")
    alive.close()
    node = live.node
    dp = node.dataplane.counters
    reached = {
        "inbound_links_opened": node.peer_manager.added[PeerType.INBOUND],
        "tlvs_handled": sum(node.router.counters.tlvs_by_type.values()),
        "data_packets_handled": sum(getattr(dp, name) for name in DATA_OUTCOMES),
    }
    live.stop()
    for error in live.errors:
        tally.crashes += 1
        if len(tally.examples) < 5:
            tally.examples.append(f"node error: {error}")
    tallies.append(tally)

    header = ("target", "inputs", "refused", "crashes", "desyncs", "seconds")
    print("{:10} {:>9} {:>9} {:>8} {:>8} {:>8}".format(*header))
    for t in tallies:
        print(
            f"{t.name:10} {t.inputs:>9,} {t.refused:>9,} {t.crashes:>8} {t.desyncs:>8} "
            f"{t.seconds:>8.1f}"
        )
        for example in t.examples:
            print("   ", example)
    total = sum(t.inputs for t in tallies)
    crashes = sum(t.crashes for t in tallies)
    desyncs = sum(t.desyncs for t in tallies)
    print(f"{'total':10} {total:>9,} {'':>9} {crashes:>8} {desyncs:>8}")
    result = {
        "seed": args.seed,
        "scale": args.scale,
        "total_inputs": total,
        "crashes": crashes,
        "desyncs": desyncs,
        "targets": {t.name: t.row() for t in tallies},
        "live_node_reached": reached,
    }
    print("live node:", ", ".join(f"{k} {v:,}" for k, v in reached.items()))
    out = Path(__file__).parent / "results" / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(1 if crashes or desyncs else 0)


if __name__ == "__main__":
    main()
