"""The bus on Redis pub/sub: per node one subscriber connection and one publishing connection.

Publishing: what one turn of the event loop publishes is sent in one pipeline (one round trip)
by a flusher task; while a flush is under way, later messages wait for the next one. If Redis
does not answer, the messages are dropped with a warning (at most one per `max_backoff`
seconds): the bus is at most once, and the log is the truth.

Receiving: a reader task owns the subscriber connection. When it breaks (or stays silent past a
ping), the reader logs a warning, waits (backoff doubling up to `max_backoff`), connects again,
subscribes to every channel asked for, and once Redis has confirmed them all, calls `connected`.
A ping every `ping_every` seconds of silence finds connections that died without a word."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from jacameno.bus import Deliver

logger = logging.getLogger(__name__)


class RedisBus:
    def __init__(
        self,
        url: str,
        *,
        name: str,
        max_backoff: float = 5.0,
        timeout: float = 2.0,
        ping_every: float = 5.0,
        max_queued: int = 10_000,
    ) -> None:
        # No retries inside redis-py: a broken connection must reach the reader loop, which
        # alone knows that messages were lost and the subscribers must be told.
        options: dict[str, Any] = {
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        self._publisher = Redis.from_url(
            url, client_name=f"jacameno-pub:{name}", socket_timeout=timeout, **options
        )
        self.subscriber_name = f"jacameno-sub:{name}"  # as CLIENT LIST shows it
        self._subscriber = Redis.from_url(url, client_name=self.subscriber_name, **options)
        self._control = f"jacameno:node:{name}"  # subscribed last: its confirmation ends a resync
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._ping_every = ping_every
        self._max_queued = max_queued
        self._channels: set[str] = set()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None  # set while subscribed
        self._queue: list[tuple[str, bytes]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._warned_at = -max_backoff
        self._first_backoff = min(0.05, max_backoff)
        self._backoff = self._first_backoff  # before the next reconnection
        self.dropped = 0  # messages published while Redis was unavailable
        self._closing = False

    def start(self, deliver: Deliver, connected: Callable[[], None]) -> None:
        self._reader = asyncio.create_task(self._read(deliver, connected), name="bus-reader")

    async def close(self) -> None:
        self._closing = True
        if self._flusher is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._flusher), self._timeout)
            except TimeoutError:
                logger.warning(
                    "bus closed before every message was published; they are dropped",
                    extra={"action": "bus.close_abandoned", "dropped": len(self._queue)},
                )
            except Exception:
                logger.exception("bus flush failed at close", extra={"action": "bus.close_failed"})
        reader = self._reader
        if reader is not None:
            # A cancellation alone can be lost inside redis-py's reads (seen on Python 3.11):
            # closing the connection under the reader ends its read for sure.
            connection = getattr(self._pubsub, "connection", None)  # None before it connects
            if connection is not None:
                await connection.disconnect(nowait=True)
            reader.cancel()
            await asyncio.wait({reader}, timeout=self._timeout)
        await self._publisher.aclose()
        await self._subscriber.aclose()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is None:
            return
        confirmed = self._confirmations.setdefault(
            channel, asyncio.get_running_loop().create_future()
        )
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), self._timeout)
        except (RedisError, OSError, TimeoutError):
            pass  # the reader reconnects, subscribes again and calls `connected`

    def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._confirmations.pop(channel, None)
        if self._pubsub is not None:
            task = asyncio.create_task(self._unsubscribe(self._pubsub, channel))
            task.add_done_callback(_ignore)

    async def _unsubscribe(self, pubsub: PubSub, channel: str) -> None:
        if channel not in self._channels:  # unless subscribed again meanwhile
            await pubsub.unsubscribe(channel)

    def publish(self, channel: str, message: bytes) -> None:
        queue = self._queue
        if len(queue) >= self._max_queued:
            self._drop(1, "too many messages queued")
            return
        queue.append((channel, message))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="bus-flush")

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    async with self._publisher.pipeline(transaction=False) as pipe:
                        for channel, message in batch:
                            pipe.publish(channel, message)
                        await pipe.execute()
                except (RedisError, OSError) as exc:
                    self._drop(len(batch), repr(exc))
        finally:
            self._flusher = None

    def _drop(self, count: int, error: str) -> None:
        self.dropped += count
        now = asyncio.get_running_loop().time()
        if now - self._warned_at >= self._max_backoff:
            self._warned_at = now
            logger.warning(
                "bus unavailable; messages dropped",
                extra={"action": "bus.publish_failed", "dropped": self.dropped, "error": error},
            )

    async def _read(self, deliver: Deliver, connected: Callable[[], None]) -> None:
        # redis-py may turn a cancellation during a connect into a ConnectionError: `_closing`,
        # not the cancellation alone, ends this loop.
        while not self._closing:
            pubsub = self._subscriber.pubsub()
            try:
                await self._receive(pubsub, deliver, connected)
            except (RedisError, OSError, TimeoutError) as exc:
                logger.warning(
                    "bus connection lost; reconnecting",
                    extra={
                        "action": "bus.disconnected",
                        "error": repr(exc),
                        "retry": self._backoff,
                    },
                )
            finally:
                self._pubsub = None
                for future in self._confirmations.values():
                    future.cancel()
                self._confirmations.clear()
                try:
                    await pubsub.aclose()
                except (RedisError, OSError) as exc:  # the link it closes is what failed
                    logger.debug(
                        "bus subscription closed with an error",
                        extra={"action": "bus.close_failed", "error": repr(exc)},
                    )
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, self._max_backoff)

    async def _receive(
        self, pubsub: PubSub, deliver: Deliver, connected: Callable[[], None]
    ) -> None:
        await pubsub.subscribe(*sorted(self._channels), self._control)
        self._pubsub = pubsub
        loop = asyncio.get_running_loop()
        heard_at = loop.time()
        pinged = False
        while not self._closing:
            message = await pubsub.get_message(timeout=self._ping_every)
            if message is None:
                if pinged or loop.time() - heard_at > 3 * self._ping_every:
                    raise TimeoutError("no answer to a ping")
                await pubsub.ping()
                pinged = True
                continue
            heard_at, pinged = loop.time(), False
            kind = message["type"]
            if kind == "message":
                deliver(message["channel"].decode(), message["data"])
            elif kind == "subscribe":
                channel = message["channel"].decode()
                if channel == self._control:
                    self._backoff = self._first_backoff
                    logger.info("bus subscribed", extra={"action": "bus.connected"})
                    connected()
                future = self._confirmations.pop(channel, None)
                if future is not None and not future.done():
                    future.set_result(None)


def _ignore(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
