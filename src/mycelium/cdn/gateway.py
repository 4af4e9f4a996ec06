"""The CDN gateway: ``GET http://<32-hex hash>.<registry host>/?key=<32 hex>`` served locally.

Behaviour of the reference (docs/extras.md §3): the host names the metadata and its registry; the
metadata is fetched from ``http://<registry>/api/v1/metadata/<hash>``, decrypted with the key
(AES-128-GCM, nonce appended) and decoded; a file is its blocks' plaintext in order, a directory an
HTML list of links. Blocks come from Redis-protocol shard servers and are cached decrypted under
the cache directory by their encrypted hash.

Deliberate improvements, invisible to a client that works with the reference: only the data
shards are fetched, plus a parity shard (Reed-Solomon, ``erasure.py``) for each one that fails
(the reference fetches all and fails if any is down); every remote call has a timeout; file
bodies are streamed after the first block rather than buffered whole; directory names are
HTML-escaped and entries without a key link without ``?key=`` (the reference's empty ``key=``
fails to decode).
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import socket
from pathlib import Path

import aiohttp
from aiohttp import web

from ..qh3_native import AeadAes128Gcm, AuthenticationFailed
from . import erasure, meta, redis

log = logging.getLogger(__name__)

#: Time allowed for one registry request or one shard download.
REMOTE_TIMEOUT = 30.0
#: Largest metadata blob accepted from a registry.
MAX_METADATA = 16 * 1024 * 1024
#: Directory entries whose metadata is fetched at once.
DIRECTORY_FETCHES = 16

_DIRECTORY_HEAD = (
    "\n<!DOCTYPE html>\n\n"
    '<html i18n-values="dir:textdirection;lang:language">\n'
    '<head>\n<meta charset="utf-8">\n</head>\n<body>\n<ul>'
)
_DIRECTORY_TAIL = "</ul></body></html>"


class Failure(Exception):
    """Ends a request with this HTTP status and an empty body, as the reference's errors do."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def request_host(request: web.BaseRequest) -> str | None:
    """The host the client asked for: ``Forwarded: host=``, X-Forwarded-Host, Host, authority."""
    forwarded = request.headers.get("Forwarded")
    if forwarded:
        for pair in forwarded.split(",")[0].split(";"):
            key, sep, value = pair.partition("=")
            if sep and key.strip().lower() == "host":
                return value.strip().strip('"')
    for header in ("X-Forwarded-Host", "Host"):
        named = request.headers.get(header)
        if named is not None:
            return named
    authority = request.url.raw_authority
    return authority.rpartition("@")[2] if authority else None


def parse_target(host: str, key: str | None) -> tuple[bytes, str, bytes | None]:
    """(metadata hash, registry host, metadata key) of a request, or Failure(400)."""
    prefix, _, registry = host.partition(".")
    if len(prefix) != 32:
        raise Failure(400)
    try:
        digest = bytes.fromhex(prefix)
        secret = bytes.fromhex(key) if key is not None else None
    except ValueError:
        raise Failure(400) from None
    if secret is not None and len(secret) != 16:
        raise Failure(400)
    return digest, registry, secret


def open_metadata(blob: bytes, key: bytes | None) -> meta.Metadata:
    """Decrypt (when keyed) and decode a registry blob, or Failure(422)."""
    if key is not None:
        if len(blob) < 12:
            raise Failure(422)
        try:
            blob = AeadAes128Gcm(key, blob[-12:]).decrypt(0, blob[:-12], b"")
        except AuthenticationFailed:
            raise Failure(422) from None
    try:
        decoded, used = meta.decode(blob)
    except meta.MetadataError as exc:
        log.debug("undecodable metadata: %s", exc)
        raise Failure(422) from None
    if used != len(blob):
        log.warning("%d trailing bytes after the metadata", len(blob) - used)
    return decoded


def open_block(block: meta.Block, shards: list[bytes]) -> bytes:
    """Plaintext of a block from its data shards, or Failure(422)/(500)."""
    data = b"".join(shards)
    if not data or data[-1] > len(data):
        raise Failure(500)
    ciphertext = data[: len(data) - data[-1]]
    try:
        return AeadAes128Gcm(block.content_hash, block.nonce).decrypt(0, ciphertext, b"")
    except AuthenticationFailed:
        raise Failure(422) from None


class Gateway:
    """The HTTP handler and its block cache; ``serve`` binds it like the reference does."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    @staticmethod
    def prepare_cache(cache_dir: Path) -> None:
        """Create the directory (one level, as the reference) or fail with a clear error."""
        try:
            cache_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create CDN cache directory {cache_dir}: {exc}") from None
        if not cache_dir.is_dir():
            raise OSError(f"CDN cache {cache_dir} is not a directory")

    async def serve(self, host: str = "localhost", port: int = 80) -> None:
        """Bind ``host:port`` (first resolved address that binds) and serve; raises OSError."""
        self.prepare_cache(self.cache_dir)
        runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.25
        )
        await runner.setup()
        loop = asyncio.get_running_loop()
        errors = []
        for *_, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            site = web.TCPSite(runner, str(address[0]), port)
            try:
                await site.start()
            except OSError as exc:
                errors.append(f"{address[0]}: {exc.strerror or exc}")
                continue
            self._runner = runner
            log.info("CDN gateway listening on [%s]:%d", address[0], port)
            return
        await runner.cleanup()
        raise OSError(f"cannot listen on {host}:{port} for the CDN gateway ({'; '.join(errors)})")

    def app(self) -> web.Application:
        """Only ``GET /``: everything a request means is in its host and ``key``."""
        app = web.Application()
        app.router.add_get("/", self.handle)
        return app

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REMOTE_TIMEOUT)
            )
        return self._session

    # --- request ------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = request_host(request)
        if host is None:
            return web.Response(status=400, text="No host found in request")
        try:
            digest, registry, key = parse_target(host, request.query.get("key"))
            metadata = await self.load_metadata(registry, digest, key)
            if isinstance(metadata, meta.Directory):
                page = await self.listing(registry, metadata)
                return web.Response(text=page, content_type="text/html")
            return await self.send_file(request, metadata)
        except Failure as failure:
            return web.Response(status=failure.status)

    async def load_metadata(self, registry: str, digest: bytes, key: bytes | None) -> meta.Metadata:
        if not registry:
            raise Failure(500)
        url = f"http://{registry}/api/v1/metadata/{digest.hex()}"
        try:
            async with self._http().get(url) as reply:
                if reply.status != 200:
                    raise Failure(reply.status)
                blob = await reply.content.read(MAX_METADATA + 1)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("metadata %s from %s: %s", digest.hex(), registry, exc)
            raise Failure(500) from None
        if len(blob) > MAX_METADATA:
            raise Failure(422)
        return open_metadata(blob, key)

    async def listing(self, registry: str, directory: meta.Directory) -> str:
        limit = asyncio.Semaphore(DIRECTORY_FETCHES)

        async def name_of(digest: bytes, key: bytes | None) -> str:
            async with limit:
                return (await self.load_metadata(registry, digest, key)).name

        names = await asyncio.gather(*(name_of(d, k) for d, k in directory.files))
        items = []
        for (digest, key), name in zip(directory.files, names, strict=True):
            query = f"?key={key.hex()}" if key is not None else ""
            href = html.escape(f"http://{digest.hex()}.{registry}/{query}")
            items.append(f'<li><a href="{href}">{html.escape(name)}</a></li>\n')
        return _DIRECTORY_HEAD + "".join(items) + _DIRECTORY_TAIL

    async def send_file(self, request: web.Request, file: meta.File) -> web.StreamResponse:
        mime = file.mime if file.mime is not None else "application/octet-stream"
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in mime):
            raise Failure(422)  # not a valid header value
        # The first block decides the status; later failures can only cut the body short.
        first = await self.block(file.blocks[0]) if file.blocks else b""
        response = web.StreamResponse(headers={"Content-Type": mime})
        await response.prepare(request)
        await response.write(first)
        for block in file.blocks[1:]:
            try:
                data = await self.block(block)
            except Failure as failure:
                # Too late for a status: cut the connection so the body is visibly incomplete.
                log.warning(
                    "block %s failed (%d) mid-response", block.encrypted_hash.hex(), failure.status
                )
                if request.transport is not None:
                    request.transport.close()
                return response
            await response.write(data)
        await response.write_eof()
        return response

    # --- blocks -------------------------------------------------------------------------------
    async def _shards(self, block: meta.Block) -> dict[int, bytes]:
        """``required_shards`` shards (index -> bytes): the data shards first, and for each one
        that fails the next parity shard, so a failure costs one more download, not all."""
        k, key = block.required_shards, block.encrypted_hash
        locations = iter(enumerate(block.shards))
        running: dict[asyncio.Task[bytes], int] = {}
        got: dict[int, bytes] = {}

        def launch() -> None:
            following = next(locations, None)
            if following is not None:
                i, s = following
                running[asyncio.ensure_future(redis.fetch(s.host, s.port, s.db, key))] = i

        for _ in range(k):
            launch()
        try:
            while len(got) < k and running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    i = running.pop(task)
                    try:
                        got[i] = task.result()
                    except (OSError, redis.RedisError) as exc:
                        log.info("shard %d of block %s: %s", i, key.hex(), exc)
                        launch()
        finally:
            for task in running:
                task.cancel()
        return got

    async def block(self, block: meta.Block) -> bytes:
        path = self.cache_dir / block.encrypted_hash.hex()
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("cannot read cached block %s: %s", path, exc)
            raise Failure(500) from None
        k = block.required_shards
        if not 0 < k <= len(block.shards):
            raise Failure(500)
        try:
            shards = await asyncio.wait_for(self._shards(block), REMOTE_TIMEOUT)
        except TimeoutError:
            log.warning("shards of block %s: timed out", block.encrypted_hash.hex())
            raise Failure(500) from None
        try:
            data_shards = erasure.reconstruct_data(shards, k, len(block.shards))
        except ValueError as exc:
            log.warning("block %s: %s", block.encrypted_hash.hex(), exc)
            raise Failure(500) from None
        plain = open_block(block, data_shards)
        try:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            await asyncio.to_thread(tmp.write_bytes, plain)
            tmp.replace(path)
        except OSError as exc:
            log.warning("cannot cache block %s: %s", path, exc)
        return plain
