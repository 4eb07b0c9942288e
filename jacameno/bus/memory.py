"""The bus inside one process: every `MemoryBus` of one `MemoryHub` is a node.

Messages are delivered at a later turn of the event loop, as over a network, in publishing
order. `disconnect` drops a node off the hub (what it would have received is lost) until
`reconnect`, which calls its `connected` like a real reconnection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jacameno.bus import Deliver


class MemoryHub:
    def __init__(self) -> None:
        self.buses: list[MemoryBus] = []


class MemoryBus:
    def __init__(self, hub: MemoryHub | None = None) -> None:
        self._hub = hub or MemoryHub()
        self._hub.buses.append(self)
        self._channels: set[str] = set()
        self._deliver: Deliver | None = None
        self._connected: Callable[[], None] | None = None
        self.online = True

    def start(self, deliver: Deliver, connected: Callable[[], None]) -> None:
        self._deliver, self._connected = deliver, connected
        asyncio.get_running_loop().call_soon(connected)

    async def close(self) -> None:
        self._deliver = None
        if self in self._hub.buses:
            self._hub.buses.remove(self)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    def subscribed(self, channel: str) -> bool:
        return channel in self._channels

    def publish(self, channel: str, message: bytes) -> None:
        if not self.online:
            return
        loop = asyncio.get_running_loop()
        for bus in self._hub.buses:
            if bus.online and bus.subscribed(channel):
                loop.call_soon(bus._receive, channel, message)

    def _receive(self, channel: str, message: bytes) -> None:
        if self.online and self._deliver is not None and channel in self._channels:
            self._deliver(channel, message)

    def disconnect(self) -> None:
        self.online = False

    def reconnect(self) -> None:
        self.online = True
        if self._connected is not None:
            self._connected()
