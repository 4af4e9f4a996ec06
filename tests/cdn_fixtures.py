"""Test doubles for the CDN gateway: a metadata encoder and uploader (the producer side of
``mycdnctl``, docs/extras.md §3.4), a fake HTTP registry and fake Redis shard servers."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import struct
from dataclasses import dataclass, field

import blake3
from aiohttp import web
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mycelium.cdn import erasure, meta


def h16(data: bytes) -> bytes:
    return blake3.blake3(data).digest()[:16]


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!Q", len(raw)) + raw


def _shard(s: meta.ShardLocation) -> bytes:
    ip = ipaddress.ip_address(s.host)
    out = (
        struct.pack("!I", 0 if ip.version == 4 else 1)
        + ip.packed
        + struct.pack("!HH", s.port, s.db)
    )
    if s.token is None:
        return out + b"\x00"
    return out + b"\x01" + struct.pack("!I", 0) + _string(s.token)


def encode(m: meta.Metadata) -> bytes:
    out = [meta.MAGIC, bytes([meta.VERSION])]
    if isinstance(m, meta.File):
        out += [struct.pack("!I", 0), m.content_hash, _string(m.name)]
        out.append(b"\x00" if m.mime is None else b"\x01" + _string(m.mime))
        out.append(struct.pack("!Q", len(m.blocks)))
        for b in m.blocks:
            out.append(struct.pack("!Q", len(b.shards)))
            out += [_shard(s) for s in b.shards]
            out.append(struct.pack("!HQQ", b.required_shards, b.start_offset, b.end_offset))
            out += [b.content_hash, b.encrypted_hash, b.nonce]
    else:
        out += [struct.pack("!I", 1), struct.pack("!Q", len(m.files))]
        for digest, key in m.files:
            out += [digest, b"\x00" if key is None else b"\x01" + key]
        out.append(_string(m.name))
    return b"".join(out)


@dataclass
class FakeRedis:
    """A RESP server holding {db: {key: value}}; ``fail`` makes it answer GET with an error."""

    data: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    gets: int = 0
    fail: bool = False
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        db = 0
        try:
            while True:
                count = int((await reader.readline())[1:-2])
                args = []
                for _ in range(count):
                    size = int((await reader.readline())[1:-2])
                    args.append((await reader.readexactly(size + 2))[:-2])
                if args[0] == b"SELECT":
                    db = int(args[1])
                    writer.write(b"+OK\r\n")
                elif args[0] == b"GET":
                    self.gets += 1
                    value = self.data.get(db, {}).get(args[1])
                    if self.fail:
                        writer.write(b"-ERR broken\r\n")
                    elif value is None:
                        writer.write(b"$-1\r\n")
                    else:
                        writer.write(b"$%d\r\n%s\r\n" % (len(value), value))
                await writer.drain()
        except (ValueError, IndexError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@dataclass
class Registry:
    """An HTTP registry: GET /api/v1/metadata/<hex> returns the stored blob."""

    blobs: dict[bytes, bytes] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/metadata/{digest}", self._get)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _get(self, request: web.Request) -> web.Response:
        blob = self.blobs.get(bytes.fromhex(request.match_info["digest"]))
        if blob is None:
            return web.Response(status=404)
        return web.Response(body=blob)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(self, m: meta.Metadata, encrypt: bool = True) -> tuple[bytes, bytes | None]:
        """Store metadata as mycdnctl would: (registry hash, metadata key or None)."""
        plain = encode(m)
        if not encrypt:
            digest = h16(plain)
            self.blobs[digest] = plain
            return digest, None
        key = h16(plain)
        nonce = os.urandom(12)
        blob = AESGCM(key).encrypt(nonce, plain, None) + nonce
        digest = h16(blob)
        self.blobs[digest] = blob
        return digest, key


def upload(
    content: bytes,
    servers: list[FakeRedis],
    k: int,
    *,
    chunk: int = 5 * 1024 * 1024,
    name: str = "file.bin",
    mime: str | None = "application/octet-stream",
) -> meta.File:
    """Split, encrypt, pad and shard ``content`` onto ``servers`` (one shard each, the first
    ``k`` being the data shards, the rest Reed-Solomon parity)."""
    blocks = []
    for offset in range(0, max(len(content), 1), chunk):
        plain = content[offset : offset + chunk]
        key, nonce = h16(plain), os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, plain, None)
        encrypted_hash = h16(sealed)
        pad = k - len(sealed) % k
        padded = sealed + bytes([pad]) * pad
        size = len(padded) // k
        data = [padded[i * size : (i + 1) * size] for i in range(k)]
        shards = data + erasure.encode(data, len(servers) - k)
        locations = []
        for shard, server in zip(shards, servers, strict=True):
            server.data.setdefault(3, {})[encrypted_hash] = shard
            locations.append(meta.ShardLocation("127.0.0.1", server.port, 3, None))
        blocks.append(
            meta.Block(
                tuple(locations), k, offset, offset + len(plain) - 1, key, encrypted_hash, nonce
            )
        )
    return meta.File(h16(content), name, mime, tuple(blocks))
