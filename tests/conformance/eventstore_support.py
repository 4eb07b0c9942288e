"""What the event store conformance suite needs from each backend, and helpers its tests share."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from eventstore import (
    EventStore,
    NewEvent,
    RecordedEvent,
    StoreClosedError,
    StoreUnavailableError,
    Subscription,
)

T = TypeVar("T")


class Backend(Protocol):
    """One event store technology, over one fresh database for the test that asked for it."""

    name: str
    # Whether stores opened by `open` share one log (true of the SQL backends), so that two of them
    # can stand for two processes.
    shared: bool
    # Seconds between two faults injected while the concurrency tests run.
    fault_interval: float

    async def open(self, **options: Any) -> EventStore:
        """A new store instance on this backend's database (`options` are constructor options
        every backend takes, such as `poll_interval`)."""
        ...

    async def reset(self) -> None:
        """Empty the database: no events, no snapshots, positions starting again at 1."""
        ...

    async def inject_fault(self, stores: Sequence[EventStore]) -> None:
        """Break what can break under `stores` (connections, the statement in flight), as a
        crashed database or a network failure would."""
        ...


def event(
    type: str = "thing.happened",
    data: bytes = b"",
    key: str | None = None,
    **metadata: Any,
) -> NewEvent:
    return NewEvent(type=type, data=data, metadata=metadata, idempotency_key=key)


def events(count: int, prefix: str = "e") -> list[NewEvent]:
    return [event(data=f"{prefix}{i}".encode()) for i in range(count)]


def summary(recorded: RecordedEvent) -> tuple[int, str, int, str, bytes, str | None]:
    """The fields that identify an event, for comparing logs read in different ways."""
    return (
        recorded.position,
        recorded.stream,
        recorded.version,
        recorded.type,
        recorded.data,
        recorded.idempotency_key,
    )


async def retrying(call: Callable[[], Awaitable[T]], attempts: int = 200) -> T:
    """Run `call` until it does not raise StoreUnavailableError: what every client of the store
    does. A closed store is not retried."""
    for attempt in range(attempts):
        try:
            return await call()
        except StoreClosedError:
            raise
        except StoreUnavailableError:
            await asyncio.sleep(0.005 * min(attempt, 10))
    return await call()


class Collector:
    """Runs a subscription in a task, keeping every event it hands out. With `restart_every`,
    it stops after that many events and resumes from its checkpoint, as a restarted process
    would."""

    def __init__(
        self,
        store: EventStore,
        after_position: int = 0,
        *,
        batch_size: int = 1000,
        restart_every: int | None = None,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.restart_every = restart_every
        self.restarts = 0
        self.subscription: Subscription = store.subscribe(after_position, batch_size=batch_size)
        self.events: list[RecordedEvent] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            async for recorded in self.subscription:
                self.events.append(recorded)
                self._changed.set()
                if self.restart_every and len(self.events) % self.restart_every == 0:
                    break
            else:
                return
            checkpoint = self.subscription.position
            self.subscription.close()
            self.subscription = self.store.subscribe(checkpoint, batch_size=self.batch_size)
            self.restarts += 1

    @property
    def position(self) -> int:
        return self.events[-1].position if self.events else 0

    async def wait_until(self, position: int, timeout: float = 20.0) -> None:
        """Wait until the subscription has handed out `position`; raise what stopped it."""
        async with asyncio.timeout(timeout):
            while self.position < position:
                self._changed.clear()
                changed = asyncio.create_task(self._changed.wait())
                await asyncio.wait({changed, self.task}, return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                await asyncio.gather(changed, return_exceptions=True)
                if self.task.done():
                    self.task.result()
                    raise AssertionError("the subscription ended")

    async def stop(self) -> None:
        self.subscription.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
