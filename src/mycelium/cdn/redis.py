"""Just enough of the Redis protocol (RESP2) to fetch one shard: ``SELECT db`` then ``GET key``.

Shards live on remote 0-DB / Hero Redis servers named in the metadata. A full Redis client would
be a dependency for two commands; this one also caps the reply size, so a hostile server cannot
make us buffer more than one shard could ever be.
"""

from __future__ import annotations

import asyncio

#: Largest bulk reply accepted: blocks are at most 5 MiB before erasure coding.
MAX_SHARD = 16 * 1024 * 1024


class RedisError(Exception):
    """The server refused, answered nonsense, or did not have the key."""


def command(*args: bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


async def _reply(reader: asyncio.StreamReader) -> bytes | None:
    line = await reader.readuntil(b"\r\n")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisError(rest.decode(errors="replace"))
    if kind == b"$":
        try:
            size = int(rest)
        except ValueError:
            raise RedisError(f"bad bulk length {rest!r}") from None
        if size < 0:
            return None
        if size > MAX_SHARD:
            raise RedisError(f"a {size}-byte reply is larger than any shard")
        data = await reader.readexactly(size + 2)
        if data[-2:] != b"\r\n":
            raise RedisError("bulk reply not terminated")
        return data[:-2]
    raise RedisError(f"unexpected reply {line[:32]!r}")


async def fetch(host: str, port: int, db: int, key: bytes) -> bytes:
    """The value of ``key`` in database ``db`` (a missing key is an error, as for the reference).

    Raises RedisError or OSError; the caller bounds the time."""
    reader, writer = await asyncio.open_connection(host, port, limit=MAX_SHARD + 64)
    try:
        writer.write(command(b"SELECT", b"%d" % db) + command(b"GET", key))
        await writer.drain()
        await _reply(reader)
        value = await _reply(reader)
        if value is None:
            raise RedisError("no such key")
        return value
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise RedisError(f"connection ended mid-reply: {exc}") from None
    finally:
        writer.close()
