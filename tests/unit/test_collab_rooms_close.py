"""Closing the rooms at shutdown: a load under way is cancelled and waited for, and the close
itself can still be cancelled meanwhile (its cancellation is not taken for the load's)."""

from __future__ import annotations

import asyncio
from typing import Any

from eventstore.memory import MemoryEventStore
from jacameno.collab.rooms import Rooms
from jacameno.settings.collab import CollabConfig


class _SlowToCancel:
    """A store whose first read of a room's load hangs, and, once cancelled, ends only when
    `release` is set."""

    def __init__(self, store: MemoryEventStore) -> None:
        self.store = store
        self.reading = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def read_from_snapshot(self, stream: str, limit: int) -> None:
        self.reading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.release.wait()
            raise


async def test_a_close_waiting_for_a_cancelled_load_can_itself_be_cancelled() -> None:
    store = _SlowToCancel(MemoryEventStore())
    gatekeeper: Any = None
    rooms = Rooms(store, gatekeeper, CollabConfig())  # type: ignore[arg-type]
    opening = asyncio.create_task(rooms.open("p"))
    await store.reading.wait()
    closing = asyncio.create_task(rooms.close())
    await store.cancelled.wait()  # the close cancelled the load and waits for it
    closing.cancel()
    await asyncio.wait({closing})
    assert closing.cancelled()
    store.release.set()
    await asyncio.wait({opening})
