"""What a node sent to a room's sockets before it was durable, kept where it outlives the node: so
that an edit another client brings back after the node's death is logged under the user who made
it (docs/collaboration.md, "Broadcast modes").

In on-receipt mode (`JACAMENO_COLLAB_BROADCAST`) a writer's update reaches the room's other
sockets before its commit. If the node dies before the commit, the edit reaches the log only
through a client that holds it: its sender resends it, and so does every other client that saw
it. Whoever reconnects first brings it back. The server cannot tell from the update who made it:
a Yjs client id is chosen by the client, so taking the update's client id at its word would let
any editor log text under someone else's name. So the node writes down, as it broadcasts, which
clocks of which Yjs client it sent for which user (`Sent`), and a room reads what a dead node
wrote (`recall`) before a socket's first new structs: a client's new structs that lie within
clocks one other user was recorded sending are logged under that user
(jacameno.collab.recovered), with the user of the socket that brought it back in `brought_by`.
A client can then only have text logged under another user at
clocks that user's client really sent and the log lost: clocks no client can choose before the
server has broadcast them, and which the author's own client resends too.

Where the ledger lives: with Postgres, an UNLOGGED table of the same database (no WAL, no
fsync: it survives the node, and is emptied only by a crash of Postgres itself); with SQLite, a
file of its own beside the database, written without fsync (`synchronous=OFF`), so that its
writes never wait behind the log's write lock, which is held through the very commit that may
not finish. A record is one row per (project, Yjs client, user): the clocks sent so far, widened
as more are sent, written by a flusher task in one statement per turn of the event loop
(`record` never waits); rows untouched for `keep_seconds` are deleted. Best effort by design: a
record the node had no time to write leaves the edit to its default author, the socket that
brings it back, as without a ledger."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqldb import Database, SQLiteDatabase

logger = logging.getLogger(__name__)

TABLE = "collab_early"
WARN_EVERY = 30.0  # seconds: at most one warning per this long while the ledger cannot be written
PRUNE_EVERY = 60.0  # seconds between deletions of rows older than `keep_seconds`

_CREATE = (
    "CREATE {unlogged} TABLE IF NOT EXISTS {table} ("
    " project_id TEXT NOT NULL, client_id BIGINT NOT NULL, user_id TEXT NOT NULL,"
    " connection_id TEXT NOT NULL, clock_start BIGINT NOT NULL, clock_end BIGINT NOT NULL,"
    " at BIGINT NOT NULL, PRIMARY KEY (project_id, client_id, user_id))"
)
_UPSERT = (
    f"INSERT INTO {TABLE} AS t (project_id, client_id, user_id, connection_id, clock_start,"
    " clock_end, at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (project_id, client_id, user_id) DO UPDATE SET"
    " connection_id = excluded.connection_id, at = excluded.at,"
    " clock_start = {least}(t.clock_start, excluded.clock_start),"
    " clock_end = {greatest}(t.clock_end, excluded.clock_end)"
)
_RECALL = (
    f"SELECT client_id, user_id, connection_id, clock_start, clock_end FROM {TABLE}"
    " WHERE project_id = $1 AND at >= $2"
)
_PRUNE = f"DELETE FROM {TABLE} WHERE at < $1"


@dataclass(frozen=True, slots=True)
class Sent:
    """Clocks `start` to `end` (exclusive) of Yjs client `client`, sent to a room's sockets
    before they were durable, for `user_id` (by its socket `connection_id`)."""

    client: int
    start: int
    end: int
    user_id: str
    connection_id: str


_Key = tuple[str, int, str]  # project, client, user


class EarlyLedger:
    """The records of one node, written behind its broadcasts; and those of every node, read
    when a room loads (`recall`)."""

    def __init__(
        self,
        db: Database,
        *,
        keep_seconds: float,
        owns_db: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._keep_ms = int(keep_seconds * 1000)
        self._owns_db = owns_db
        self._clock = clock
        postgres = db.kind == "postgres"
        self._upsert = _UPSERT.format(
            least="LEAST" if postgres else "min", greatest="GREATEST" if postgres else "max"
        )
        self._queued: dict[_Key, list[int | str]] = {}  # connection, start, end
        self._flusher: asyncio.Task[None] | None = None
        self._warned_at = -WARN_EVERY
        self._pruned_at = 0.0
        self.dropped = 0  # records not written (the database refused or was unavailable)

    @classmethod
    async def open(
        cls, db: Database, *, keep_seconds: float, clock: Callable[[], float] = time.time
    ) -> EarlyLedger:
        """The ledger in `db` (a Postgres database: an UNLOGGED table in it), its table created
        if missing. DatabaseError if it cannot be."""
        if db.kind == "postgres":
            async with db.transaction() as conn:
                # Nodes starting together would race to create the table's type otherwise.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", TABLE)
                await conn.execute(_CREATE.format(unlogged="UNLOGGED", table=TABLE))
        else:
            await db.execute(_CREATE.format(unlogged="", table=TABLE))
        return cls(db, keep_seconds=keep_seconds, clock=clock)

    @classmethod
    async def open_file(
        cls, path: Path, *, keep_seconds: float, clock: Callable[[], float] = time.time
    ) -> EarlyLedger:
        """The ledger in an SQLite file of its own at `path`, written without fsync."""
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await SQLiteDatabase.open(path)
        try:
            await db.execute("PRAGMA synchronous=OFF")
            await db.execute(_CREATE.format(unlogged="", table=TABLE))
        except BaseException:
            await db.close()
            raise
        return cls(db, keep_seconds=keep_seconds, owns_db=True, clock=clock)

    def record(self, project_id: str, sent: Sent) -> None:
        """Write `sent` down (soon, in the background: never waits)."""
        key = (project_id, sent.client, sent.user_id)
        queued = self._queued.get(key)
        if queued is None:
            self._queued[key] = [sent.connection_id, sent.start, sent.end]
        else:
            queued[0] = sent.connection_id
            queued[1] = min(int(queued[1]), sent.start)
            queued[2] = max(int(queued[2]), sent.end)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="early-ledger")

    async def recall(self, project_id: str) -> list[Sent]:
        """What was recorded for `project_id` in the last `keep_seconds`, by any node;
        DatabaseError if it cannot be read."""
        since = int(self._clock() * 1000) - self._keep_ms
        rows = await self._db.fetch(_RECALL, project_id, since)
        return [Sent(int(r[0]), int(r[3]), int(r[4]), str(r[1]), str(r[2])) for r in rows]

    async def flushed(self) -> None:
        """Wait until what was recorded so far is written (or dropped)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def close(self) -> None:
        """Write what is queued, then stop (and close the ledger's own file)."""
        with contextlib.suppress(Exception):
            await self.flushed()
        if self._owns_db:
            await self._db.close()

    async def _flush(self) -> None:
        try:
            while self._queued:
                queued, self._queued = self._queued, {}
                now = int(self._clock() * 1000)
                rows = [
                    (project, client, user, connection, start, end, now)
                    for (project, client, user), (connection, start, end) in queued.items()
                ]
                try:
                    await self._db.executemany(self._upsert, rows)
                    if now - self._pruned_at * 1000 >= PRUNE_EVERY * 1000:
                        self._pruned_at = now / 1000
                        await self._db.execute(_PRUNE, now - self._keep_ms)
                except Exception as exc:
                    self.dropped += len(rows)
                    self._warn(exc)
        finally:
            self._flusher = None

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "early broadcasts not recorded: an edit brought back after this node's death"
                " would be logged under the user who brings it back",
                extra={"action": "collab.ledger_failed", "error": repr(exc)},
            )
