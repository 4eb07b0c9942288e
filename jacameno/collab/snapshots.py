"""A room's committed document as its latest snapshot plus the updates since, and the folding of
the two into the next snapshot: off the hot path (a worker thread), one fold at a time for the
whole server (pycrdt holds the GIL through a fold), at jittered points so that rooms that
started together do not all fold in the same second."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from crdt import document
from eventstore import EventStore, EventStoreError
from jacameno.collab.errors import MalformedMessage
from jacameno.settings.collab import CollabConfig

logger = logging.getLogger(__name__)


class Snapshots:
    def __init__(
        self,
        store: EventStore,
        stream: str,
        config: CollabConfig,
        node: str,
        base: bytes,
        tail: list[bytes],
        folds: asyncio.Semaphore,
        version: Callable[[], int],
    ) -> None:
        self._store = store
        self._version = version  # the version of the committed state recorded so far
        self._stream = stream
        self._config = config
        self._node = node
        self._folds = folds
        # The committed state is `_base` + `_since`.
        self._base = base
        self._since = list(tail)
        self._since_bytes = sum(len(u) for u in tail)
        self._after = self._jittered()
        self.running: asyncio.Task[None] | None = None
        self.saved = 0

    @property
    def size(self) -> int:
        """An upper bound of the encoded committed document."""
        return len(self._base) + self._since_bytes

    @property
    def behind(self) -> bool:
        """Whether the log has committed updates after the latest snapshot."""
        return bool(self._since)

    def record(self, update: bytes) -> None:
        """A committed update."""
        self._since.append(update)
        self._since_bytes += len(update)

    def due(self) -> bool:
        return self.running is None and (
            len(self._since) >= self._after
            or self._since_bytes >= self._config.snapshot_every_bytes
        )

    def start(self) -> None:
        """Fold what is recorded, the committed state at the current version, and save it."""
        self._after = self._jittered()
        self.running = asyncio.create_task(
            self._snapshot(self._base, list(self._since), self._version()),
            name=f"snapshot-{self._stream}",
        )

    async def settled(self) -> None:
        """Wait until no snapshot is being taken (a saved one may start the next)."""
        while self.running is not None:
            await asyncio.shield(self.running)

    def _jittered(self) -> int:
        every, jitter = self._config.snapshot_every_updates, self._config.snapshot_jitter
        return max(1, round(every * random.uniform(1 - jitter, 1 + jitter)))

    async def _snapshot(self, base: bytes, updates: list[bytes], version: int) -> None:
        try:
            started = time.perf_counter()
            async with self._folds:
                state = await asyncio.to_thread(document.fold, base, updates)
            await self._store.save_snapshot(
                self._stream, version, state, {"node": self._node, "updates": len(updates)}
            )
        except (EventStoreError, MalformedMessage) as exc:
            logger.warning(
                "snapshot failed",
                extra={
                    "action": "collab.snapshot_failed",
                    "stream": self._stream,
                    "error": repr(exc),
                },
            )
            return
        finally:
            self.running = None
        self._base = state
        del self._since[: len(updates)]
        self._since_bytes = sum(len(u) for u in self._since)
        self.saved += 1
        logger.info(
            "snapshot saved",
            extra={
                "action": "collab.snapshot",
                "stream": self._stream,
                "version": version,
                "bytes": len(state),
                "updates": len(updates),
                "seconds": round(time.perf_counter() - started, 4),
            },
        )
        # Commits that came while this one ran may have made the next one due: a room that goes
        # quiet then still gets its snapshot now rather than at the next commit or at unload.
        if self.due():
            self.start()
