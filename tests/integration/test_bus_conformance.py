"""One suite for every bus backend (in-process and Redis): delivery to subscribers in publishing
order, unsubscribing, and `connected` after a lost connection, with subscriptions restored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from harness.waiting import eventually, wait_until
from jacameno.bus import Bus
from jacameno.bus.memory import MemoryBus, MemoryHub
from jacameno.bus.redis import RedisBus
from tests.integration.collab.support import kill_clients


@dataclass
class Node:
    bus: Bus
    received: list[tuple[str, bytes]] = field(default_factory=list)
    connections: int = 0

    def start(self) -> None:
        self.bus.start(lambda channel, message: self.received.append((channel, message)), self._up)

    def _up(self) -> None:
        self.connections += 1


@dataclass
class Backend:
    make: Callable[[], Node]
    cut: Callable[[Node], Awaitable[None]]  # lose the node's connection; it must come back
    subscribers: Callable[[str], Awaitable[int]]  # how many nodes the backend delivers to


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    nodes: list[Node] = []
    if request.param == "memory":
        hub = MemoryHub()

        def make_memory() -> Node:
            nodes.append(Node(MemoryBus(hub)))
            return nodes[-1]

        async def cut_memory(node: Node) -> None:
            assert isinstance(node.bus, MemoryBus)
            node.bus.disconnect()
            node.bus.reconnect()

        async def subscribers_memory(channel: str) -> int:
            return sum(bus.subscribed(channel) for bus in hub.buses)

        yield Backend(make_memory, cut_memory, subscribers_memory)
    else:
        url: str = request.getfixturevalue("redis_url")

        def make_redis() -> Node:
            nodes.append(Node(RedisBus(url, name=uuid.uuid4().hex, max_backoff=0.1)))
            return nodes[-1]

        async def cut_redis(node: Node) -> None:
            assert isinstance(node.bus, RedisBus)
            assert await kill_clients(url, node.bus.subscriber_name) == 1

        async def subscribers_redis(channel: str) -> int:
            admin = Redis.from_url(url)
            try:
                counts = await admin.pubsub_numsub(channel)
            finally:
                await admin.aclose()
            return int(counts[0][1])

        yield Backend(make_redis, cut_redis, subscribers_redis)
    for node in nodes:
        await node.bus.close()


async def _started(backend: Backend) -> Node:
    node = backend.make()
    node.start()
    await eventually(lambda: node.connections == 1)
    return node


async def test_subscribers_get_messages_in_publishing_order(backend: Backend) -> None:
    channel, other = f"c-{uuid.uuid4().hex}", f"c-{uuid.uuid4().hex}"
    publisher, subscriber, bystander = [await _started(backend) for _ in range(3)]
    await subscriber.bus.subscribe(channel)
    await publisher.bus.subscribe(channel)
    await bystander.bus.subscribe(other)
    for i in range(100):
        publisher.bus.publish(channel, b"%d" % i)
        if i % 10 == 0:
            await asyncio.sleep(0)
    expected = [(channel, b"%d" % i) for i in range(100)]
    await eventually(lambda: subscriber.received == expected)
    await eventually(lambda: publisher.received == expected)  # the publisher too
    assert bystander.received == []


async def test_an_unsubscribed_channel_is_not_delivered(backend: Backend) -> None:
    channel = f"c-{uuid.uuid4().hex}"
    publisher, subscriber = await _started(backend), await _started(backend)
    await subscriber.bus.subscribe(channel)
    publisher.bus.publish(channel, b"one")
    await eventually(lambda: subscriber.received == [(channel, b"one")])
    subscriber.bus.unsubscribe(channel)

    async def taken() -> bool:  # the backend has taken the unsubscription
        return not await backend.subscribers(channel)

    await wait_until(taken, "the unsubscription arrived", 5, interval=0.005)
    sentinel = f"c-{uuid.uuid4().hex}"
    await subscriber.bus.subscribe(sentinel)
    publisher.bus.publish(channel, b"two")
    publisher.bus.publish(sentinel, b"end")  # delivered in publishing order: after "two"
    await eventually(lambda: (sentinel, b"end") in subscriber.received)
    assert subscriber.received == [(channel, b"one"), (sentinel, b"end")]


async def test_a_lost_connection_is_announced_and_subscriptions_are_restored(
    backend: Backend,
) -> None:
    channel = f"c-{uuid.uuid4().hex}"
    publisher, subscriber = await _started(backend), await _started(backend)
    await subscriber.bus.subscribe(channel)
    await backend.cut(subscriber)
    await eventually(lambda: subscriber.connections == 2)
    publisher.bus.publish(channel, b"after")
    await eventually(lambda: subscriber.received == [(channel, b"after")])
