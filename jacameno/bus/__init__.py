"""The bus: how the nodes of one deployment tell each other what just happened.

A message is bytes published on a channel; every node subscribed to that channel receives it,
the publisher included if it is subscribed. Delivery is at most once and in publishing order per
publisher, never more: a node that was disconnected misses what was published meanwhile, and is
told when it is connected again (`connected`), so that it can read what it missed from where the
truth is kept (for documents: the log). Nothing that must survive travels only on the bus.

Backends: `redis` (Redis pub/sub, for several nodes) and `memory` (in one process: the nodes of
a test, or anything that wants the same contract without a Redis). A single `jacameno serve`
without Redis has no bus at all: there is nobody to tell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Deliver = Callable[[str, bytes], None]  # (channel, message)


class Bus(Protocol):
    def start(self, deliver: Deliver, connected: Callable[[], None]) -> None:
        """Begin receiving: `deliver` gets every message of the subscribed channels, in the
        order each publisher published them; `connected` is called each time the node is
        (again) subscribed to every channel it asked for, after which it may have missed
        messages published while it was not."""
        ...

    async def close(self) -> None:
        """Send what is queued (briefly), stop receiving, release connections."""
        ...

    async def subscribe(self, channel: str) -> None:
        """Receive `channel`'s messages. Returns once messages published from now on will be
        delivered, or at once if the bus is disconnected (it subscribes again on reconnecting,
        then calls `connected`). Never raises for an unavailable bus."""
        ...

    def unsubscribe(self, channel: str) -> None:
        """Stop receiving `channel` (messages already on their way may still arrive)."""
        ...

    def publish(self, channel: str, message: bytes) -> None:
        """Queue `message`; what one turn of the event loop publishes leaves in one round trip.
        Never blocks and never raises: if the bus is unavailable the message is lost (and
        logged), which the subscribers' `connected` and their own checks make up for."""
        ...
