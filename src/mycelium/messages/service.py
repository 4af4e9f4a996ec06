"""The asyncio side of the message bus: API callers waiting for replies or for the inbox, and
topics forwarded to Unix sockets.

The node owns the ``MessageEngine`` (rules, timers) like its router and pumps it with everything
else; this class only turns the engine's results into awakened futures and socket round trips,
and asks the node to ``flush`` after each call into the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from .engine import MessageEngine, MessageStatus, ReceivedMessage

log = logging.getLogger(__name__)

#: How long a topic's forward socket gets to answer (the reference's SOCKET_REPLY_TIMEOUT).
SOCKET_REPLY_TIMEOUT = 5.0


class MessageService:
    def __init__(
        self, engine: MessageEngine, flush: Callable[[], None], now: Callable[[], float]
    ) -> None:
        """``flush`` sends what the engine queued and re-arms its timer; ``now`` is the clock
        the engine runs on."""
        self.engine = engine
        self._flush = flush
        self._now = now
        self._loop = asyncio.get_running_loop()
        self._clock_offset = time.time() - now()
        self._reply_waiters: dict[bytes, asyncio.Future[ReceivedMessage]] = {}
        self._inbox_changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for waiter in self._reply_waiters.values():
            waiter.cancel()

    def collect(self) -> None:
        """Take the engine's replies and forwards (the node calls this in every flush)."""
        engine = self.engine
        for reply in engine.take_replies():
            waiter = self._reply_waiters.pop(reply.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(reply)
            else:
                engine.deliver(reply)
        for message, path in engine.take_forwards():
            task = self._loop.create_task(self._forward(message, path))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if engine.inbox_size:
            self._inbox_changed.set()

    # --- API ----------------------------------------------------------------------------------
    async def push(
        self, dst: bytes, data: bytes, topic: bytes = b"", reply_timeout: float | None = None
    ) -> tuple[bytes, ReceivedMessage | None]:
        """Send; with ``reply_timeout``, wait that long for the reply (None if none came)."""
        now = self._now()
        message_id = self.engine.push(
            dst, data, now, topic=topic, subscribe=reply_timeout is not None
        )
        waiter: asyncio.Future[ReceivedMessage] | None = None
        if reply_timeout is not None:
            waiter = self._loop.create_future()
            self._reply_waiters[message_id] = waiter
        self._flush()
        if waiter is None:
            return message_id, None
        try:
            return message_id, await asyncio.wait_for(waiter, reply_timeout)
        except TimeoutError:
            self._reply_waiters.pop(message_id, None)
            self.engine.unsubscribe(message_id, self._now())
            return message_id, None

    def reply(self, reply_to: bytes, dst: bytes, data: bytes) -> None:
        self.engine.reply(reply_to, dst, data, self._now())
        self._flush()

    async def pop(
        self, topic: bytes | None = None, peek: bool = False, timeout: float = 0.0
    ) -> ReceivedMessage | None:
        deadline = self._now() + timeout
        while True:
            message = self.engine.pop(topic, peek)
            if message is not None:
                self._flush()
                return message
            left = deadline - self._now()
            if left <= 0:
                return None
            self._inbox_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._inbox_changed.wait(), left)

    def status(self, message_id: bytes) -> MessageStatus | None:
        return self.engine.status(message_id, self._clock_offset)

    # --- topic sockets ------------------------------------------------------------------------
    async def _forward(self, message: ReceivedMessage, path: str) -> None:
        """Write the message to the topic's socket; its answer (read to EOF) is the reply. On any
        failure the message goes to the inbox instead, as in the reference."""
        try:
            async with asyncio.timeout(SOCKET_REPLY_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(path)
                try:
                    writer.write(message.data)
                    await writer.drain()
                    if writer.can_write_eof():
                        writer.write_eof()
                    answer = await reader.read()
                finally:
                    writer.close()
            if not answer:
                raise ConnectionError("socket closed before we read a reply")
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.warning("forwarding message %s to %s failed: %s", message.id.hex(), path, exc)
            self.engine.deliver(message)
        else:
            self.engine.reply(message.id, message.src_ip, answer, self._now())
        self._flush()
