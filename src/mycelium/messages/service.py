"""The message engine inside a running node: timers, waiting API callers, Unix-socket forwarding.

The only asyncio in the message subsystem; the rules all live in ``engine.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING

from .engine import MessageEngine, ReceivedMessage

if TYPE_CHECKING:
    from ..node import Node

log = logging.getLogger(__name__)

#: How long a topic's forward socket gets to answer (the reference's SOCKET_REPLY_TIMEOUT).
SOCKET_REPLY_TIMEOUT = 5.0


class MessageService:
    def __init__(self, node: Node) -> None:
        self.node = node
        identity = node.identity
        self.engine = MessageEngine(
            identity.address,
            identity.public_key,
            node.router.public_key_for,
            topics=node.config.topic_config,
        )
        self._loop = asyncio.get_running_loop()
        self._clock_offset = time.time() - self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._reply_waiters: dict[bytes, asyncio.Future[ReceivedMessage]] = {}
        self._inbox_changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        node.set_message_sink(self._incoming)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        for waiter in self._reply_waiters.values():
            waiter.cancel()

    # --- the pump -----------------------------------------------------------------------------
    def _incoming(self, messages: list[tuple[bytes, bytes, bytes]]) -> None:
        now = self._loop.time()
        for src, dst, payload in messages:
            self.engine.handle(src, dst, payload, now)
        self._pump()

    def _pump(self) -> None:
        engine = self.engine
        outgoing = engine.take_outgoing()
        if outgoing:
            self.node.send_message_payloads(outgoing)
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
        deadline = engine.next_deadline()
        if deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self.engine.tick(self._loop.time())
        self._pump()

    # --- API ----------------------------------------------------------------------------------
    async def push(
        self, dst: bytes, data: bytes, topic: bytes = b"", reply_timeout: float | None = None
    ) -> tuple[bytes, ReceivedMessage | None]:
        """Send; with ``reply_timeout``, wait that long for the reply (None if none came)."""
        now = self._loop.time()
        message_id = self.engine.push(
            dst, data, now, topic=topic, subscribe=reply_timeout is not None
        )
        waiter: asyncio.Future[ReceivedMessage] | None = None
        if reply_timeout is not None:
            waiter = self._loop.create_future()
            self._reply_waiters[message_id] = waiter
        self._pump()
        if waiter is None:
            return message_id, None
        try:
            return message_id, await asyncio.wait_for(waiter, reply_timeout)
        except TimeoutError:
            self._reply_waiters.pop(message_id, None)
            self.engine.unsubscribe(message_id, self._loop.time())
            return message_id, None

    def reply(self, reply_to: bytes, dst: bytes, data: bytes) -> None:
        self.engine.reply(reply_to, dst, data, self._loop.time())
        self._pump()

    async def pop(
        self, topic: bytes | None = None, peek: bool = False, timeout: float = 0.0
    ) -> ReceivedMessage | None:
        deadline = self._loop.time() + timeout
        while True:
            message = self.engine.pop(topic, peek)
            if message is not None:
                self._pump()
                return message
            left = deadline - self._loop.time()
            if left <= 0:
                return None
            self._inbox_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._inbox_changed.wait(), left)

    def status(self, message_id: bytes) -> dict | None:
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
            self.engine.reply(message.id, message.src_ip, answer, self._loop.time())
        self._pump()
