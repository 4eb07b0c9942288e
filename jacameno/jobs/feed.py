"""A project's job and asset events as they are logged, for Server-Sent Events: one reader of the
log per node (started by the first listener, stopped with the last), fanned out to each listener
of the event's project. A listener resumes after a position (`Last-Event-ID`) by reading its
project's stream up to where the live feed took over; a listener that falls too far behind is
ended (it reconnects and resumes) rather than holding memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from domain.events import is_project_stream, project_of, stream_name
from domain.events.assets import ASSET_EVENT_TYPES
from domain.events.jobs import JOB_EVENT_TYPES
from eventstore import EventStore, RecordedEvent, StoreClosedError

logger = logging.getLogger(__name__)

TYPES = ASSET_EVENT_TYPES | JOB_EVENT_TYPES
QUEUE = 1000  # events a listener may lag behind before it is ended
PAGE = 500


class Overrun(Exception):
    """The listener fell more than QUEUE events behind; resume from its last position."""


@dataclass(eq=False)
class _Listener:
    project_id: str
    queue: asyncio.Queue[RecordedEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))


class ProjectFeed:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._listeners: set[_Listener] = set()
        self._reader: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    @contextlib.asynccontextmanager
    async def listening(
        self, project_id: str, after: int = 0
    ) -> AsyncIterator[AsyncIterator[RecordedEvent]]:
        """For the block: the project's job and asset events after position `after` (0: from
        the moment the block is entered), then as they are logged; once entered, nothing logged
        is missed. The iterator raises Overrun if it lags too far."""
        listener = _Listener(project_id)
        self._listeners.add(listener)
        try:
            reader = self._start()
            started = asyncio.ensure_future(self._started.wait())
            await asyncio.wait({started, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not started.done():
                started.cancel()
                reader.result()  # the reader failed before it started: its error
                raise StoreClosedError("the feed's reader ended")
            yield self._events(listener, after)
        finally:
            self._listeners.discard(listener)
            if not self._listeners:
                await self._stop()

    async def _events(self, listener: _Listener, after: int) -> AsyncIterator[RecordedEvent]:
        if after > 0:
            async for event in self._history(listener.project_id, after):
                after = event.position
                yield event
        while True:
            live = await listener.queue.get()
            if live is None:
                raise Overrun("the listener fell behind the log")
            if live.position > after:
                after = live.position
                yield live

    async def _history(self, project_id: str, after: int) -> AsyncIterator[RecordedEvent]:
        """The project's events of TYPES after position `after`, from its stream."""
        stream, version = stream_name(project_id), 1
        while True:
            page = await self._store.read_stream(stream, version, limit=PAGE)
            for event in page:
                if event.position > after and event.type in TYPES:
                    yield event
            if len(page) < PAGE:
                return
            version = page[-1].version + 1

    def _start(self) -> asyncio.Task[None]:
        if self._reader is None or self._reader.done():
            self._started.clear()
            self._reader = asyncio.create_task(self._read(), name="project-feed")
        return self._reader

    async def _stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def close(self) -> None:
        await self._stop()

    async def _read(self) -> None:
        try:
            head = await self._store.head_position()
            subscription = self._store.subscribe(head)
            self._started.set()
            # A listener resuming reads its stream up to the head it saw; the live feed starts
            # at the head read here, before it: nothing falls between (an event twice is
            # skipped).
            async for event in subscription:
                if event.type in TYPES and is_project_stream(event.stream):
                    self._hand_out(project_of(event.stream), event)
        finally:
            # The reader ended (the store closed or failed): each listener ends too, and
            # reconnects to resume after what it had.
            for listener in list(self._listeners):
                self._end(listener)

    def _hand_out(self, project_id: str, event: RecordedEvent) -> None:
        for listener in list(self._listeners):
            if listener.project_id != project_id:
                continue
            try:
                listener.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._end(listener)

    def _end(self, listener: _Listener) -> None:
        """End the listener's iteration (Overrun) at its next read."""
        self._listeners.discard(listener)
        while not listener.queue.empty():
            listener.queue.get_nowait()
        listener.queue.put_nowait(None)
