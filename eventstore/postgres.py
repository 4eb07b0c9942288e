"""The Postgres backend (asyncpg): group commit through one writer connection
(`eventstore.pgwriter`: every write is one statement, so the sequencer lock that orders all
nodes' commits is never held across a client round trip), reads through a pool, and
LISTEN/NOTIFY to wake subscribers. Every connection carries the session settings of
`dbdrivers.postgres` (timeouts, keepalives; the writer's on top, `eventstore.pgsession`) and a
client-side command timeout."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import asyncpg

from dbdrivers.postgres import keep_session, on_pool, server_settings
from eventstore.errors import InvalidEventError, StoreClosedError
from eventstore.groupcommit import GroupCommitter, Pacing
from eventstore.limits import (
    Limits,
    check_position,
    check_snapshot,
    check_stream,
    check_version,
)
from eventstore.model import (
    ANY,
    AppendResult,
    NewEvent,
    RecordedEvent,
    Snapshot,
    records_from_rows,
)
from eventstore.pgsession import translate
from eventstore.pgwriter import _VERSIONS, CHANNEL, PostgresWriter
from eventstore.planning import AppendRequest
from eventstore.signal import CommitSignal
from eventstore.stats import StoreStats
from eventstore.subscription import SharedReads, Subscription

__all__ = ["PostgresEventStore", "translate"]

logger = logging.getLogger(__name__)

_COLUMNS = "position, stream, version, type, data, metadata::text, idempotency_key, recorded_at"

# The latest snapshot (a row without a position, first: its version is below every event's)
# and the events after it, in one statement: one round trip and one view of both tables.
_FROM_SNAPSHOT = f"""
WITH snap AS (
    SELECT version, state, metadata::text AS metadata, recorded_at FROM es_snapshots
    WHERE stream = $1 ORDER BY version DESC LIMIT 1
)
SELECT * FROM (
    SELECT NULL::bigint, $1::text, version, NULL::text, state, metadata, NULL::text, recorded_at
    FROM snap
    UNION ALL
    (SELECT {_COLUMNS} FROM es_events
     WHERE stream = $1 AND version > coalesce((SELECT version FROM snap), 0)
     ORDER BY version LIMIT $2)
) AS found ORDER BY 3
"""


def _records(rows: list[asyncpg.Record]) -> list[RecordedEvent]:
    return records_from_rows(rows)


class PostgresEventStore:
    """Event store in Postgres. Create the schema first (`jacameno migrate`)."""

    def __init__(
        self,
        dsn: str,
        *,
        limits: Limits | None = None,
        max_batch_events: int = 5000,
        pacing: Pacing | None = None,
        pool_size: int = 4,
        poll_interval: float = 1.0,
        connect_timeout: float = 10.0,
        command_timeout: float = 15.0,
    ) -> None:
        self.dsn = dsn
        self.limits = limits or Limits()
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout  # client side, for a link that went silent
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listener_retry_at = 0.0
        self._listener_lock = asyncio.Lock()
        self._signal = CommitSignal()
        self._writer = PostgresWriter(
            dsn,
            self._readers,
            self._signal.publish,
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
        )
        self._committer = GroupCommitter(
            self._writer.commit_batch, max_events=max_batch_events, pacing=pacing
        )
        self._poll_interval = poll_interval
        self._shared_reads = SharedReads(self)
        self._closed = False

    @classmethod
    async def open(cls, dsn: str, **options: Any) -> PostgresEventStore:
        """Connect (pool, writer, listener) and check that the schema exists."""
        store = cls(dsn, **options)
        try:
            store._pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=store._pool_size,
                timeout=store._connect_timeout,
                command_timeout=store._command_timeout,
                server_settings=server_settings(dsn, "jacameno-eventstore-reader"),
                reset=keep_session,
            )
            store._signal.publish(await store.head_position())
            await store._ensure_listener()
        except BaseException as exc:
            await store.close()
            if isinstance(exc, Exception):
                raise translate(exc) from exc
            raise
        return store

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the event store is closed")

    def _readers(self) -> asyncpg.Pool:
        self._check_open()
        assert self._pool is not None, "use PostgresEventStore.open()"
        return self._pool

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await on_pool(
                self._readers(), lambda conn: conn.fetch(query, *args)
            )
        except Exception as exc:
            raise translate(exc) from exc
        return rows

    # -- writing ---------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int = ANY,
    ) -> AppendResult:
        self._check_open()
        request = AppendRequest.checked(stream, events, expected_version, self.limits)
        return await self._committer.submit(request)

    async def save_snapshot(
        self,
        stream: str,
        version: int,
        state: bytes,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self._check_open()
        check_stream(stream)
        check_version(version)
        meta = check_snapshot(state, metadata, self.limits)
        existing = await self._fetch("SELECT version FROM es_snapshots WHERE stream = $1", stream)
        kept = self.limits.snapshots_kept([r[0] for r in existing] + [version], version, len(state))
        # One statement: the save (when it is one of those kept) and the prune commit together.
        # A save racing this one may be pruned here or keep one too many until the next save:
        # either way every snapshot left is a true state and the log is untouched.
        rows = await self._fetch(
            """
            WITH target AS (
                SELECT $2 > 0
                    AND EXISTS (SELECT 1 FROM es_events WHERE stream = $1 AND version = $2) AS ok
            ), saved AS (
                INSERT INTO es_snapshots (stream, version, state, metadata)
                SELECT $1::text, $2::bigint, $3::bytea, $4::jsonb
                WHERE (SELECT ok FROM target) AND $2 = ANY($5::bigint[])
                ON CONFLICT (stream, version) DO UPDATE
                    SET state = EXCLUDED.state, metadata = EXCLUDED.metadata,
                        recorded_at = EXCLUDED.recorded_at
                RETURNING version
            ), pruned AS (
                DELETE FROM es_snapshots
                WHERE stream = $1 AND (SELECT ok FROM target) AND version <> ALL($5::bigint[])
            )
            SELECT ok FROM target
            """,
            stream,
            version,
            state,
            meta,
            sorted(kept),
        )
        if not rows[0][0]:
            raise InvalidEventError(f"stream {stream!r} has no version {version}")

    # -- reading ---------------------------------------------------------------------------

    async def read_stream(
        self,
        stream: str,
        from_version: int = 1,
        to_version: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        check_stream(stream)
        low = check_version(from_version, "from_version")
        high = None if to_version is None else check_version(to_version, "to_version")
        count = None if limit is None else check_version(limit, "limit")
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM es_events WHERE stream = $1 AND version >= $2"
            " AND ($3::bigint IS NULL OR version <= $3) ORDER BY version LIMIT $4",
            stream,
            low,
            high,
            count,
        )
        return _records(rows)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        after = check_position(after_position)
        count = check_version(limit, "limit")
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM es_events WHERE position > $1 ORDER BY position LIMIT $2",
            after,
            count,
        )
        return _records(rows)

    def subscribe(self, after_position: int = 0, *, batch_size: int = 1000) -> Subscription:
        check_position(after_position)
        return Subscription(
            self._shared_reads,
            after_position,
            batch_size=batch_size,
            poll_interval=self._poll_interval,
        )

    async def head_position(self) -> int:
        rows = await self._fetch("SELECT position FROM es_sequencer WHERE id = 1")
        return int(rows[0][0])

    async def stream_version(self, stream: str) -> int:
        rows = await self._fetch(_VERSIONS, [check_stream(stream)])
        return int(rows[0][1])

    async def load_snapshot(self, stream: str, max_version: int | None = None) -> Snapshot | None:
        check_stream(stream)
        high = None if max_version is None else check_version(max_version, "max_version")
        rows = await self._fetch(
            "SELECT stream, version, state, metadata::text, recorded_at FROM es_snapshots"
            " WHERE stream = $1 AND ($2::bigint IS NULL OR version <= $2)"
            " ORDER BY version DESC LIMIT 1",
            stream,
            high,
        )
        if not rows:
            return None
        r = rows[0]
        return Snapshot(r[0], r[1], r[2], json.loads(r[3]), r[4])

    async def read_from_snapshot(
        self, stream: str, limit: int
    ) -> tuple[Snapshot | None, list[RecordedEvent]]:
        check_stream(stream)
        count = check_version(limit, "limit")
        rows = await self._fetch(_FROM_SNAPSHOT, stream, count)
        snapshot = None
        if rows and rows[0][0] is None:  # the snapshot's row has no position
            r = rows[0]
            snapshot = Snapshot(r[1], r[2], r[4], json.loads(r[5]), r[7])
            rows = rows[1:]
        return snapshot, _records(rows)

    # -- waking subscribers ----------------------------------------------------------------

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            self._signal.publish(int(str(payload)))
        except ValueError:
            self._signal.poke()

    def _on_listener_lost(self, _conn: object) -> None:
        self._listener = None
        self._signal.poke()

    async def _ensure_listener(self) -> None:
        async with self._listener_lock:  # concurrent waiters must not each open a listener
            await self._connect_listener()

    async def _connect_listener(self) -> None:
        if self._closed or (self._listener is not None and not self._listener.is_closed()):
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self._listener_retry_at:
            return
        try:
            conn = await asyncpg.connect(
                self.dsn,
                timeout=self._connect_timeout,
                server_settings=server_settings(self.dsn, "jacameno-eventstore-listener"),
            )
            try:
                await conn.add_listener(CHANNEL, self._on_notify)
                conn.add_termination_listener(self._on_listener_lost)
            except BaseException:  # failed or cancelled (a subscriber stopped): do not leak it
                conn.terminate()
                raise
        except Exception as exc:
            self._listener_retry_at = loop.time() + self._poll_interval
            logger.warning(
                "cannot LISTEN; subscribers fall back to polling",
                extra={"action": "listen.failed", "error": str(exc)},
            )
            return
        self._listener = conn

    async def wait_for_commit(self, after_position: int, timeout: float) -> bool:
        if self._closed:
            return False
        await self._ensure_listener()
        return await self._signal.wait(after_position, timeout)

    # -- lifecycle -------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        return self._committer.stats()

    async def terminate_connections(self) -> None:
        """Cut the writer and listener connections abruptly, as a network failure would. A test
        seam: fault-injection tests call it; the server never does."""
        self._writer.drop()
        if self._listener is not None and not self._listener.is_closed():
            self._listener.terminate()

    async def close(self) -> None:
        if self._closed:
            return
        await self._committer.close()
        self._closed = True
        self._signal.poke()
        async with self._listener_lock:  # a listener being connected is closed with the rest
            await self._writer.close()
            if self._listener is not None and not self._listener.is_closed():
                await _closed_or_logged("listener", self._listener.close(), 2)
            self._listener = None
        if self._pool is not None:
            await _closed_or_logged("pool", self._pool.close(), 5)
            self._pool = None


async def _closed_or_logged(what: str, closing: Awaitable[None], seconds: float) -> None:
    """Close at shutdown within `seconds`; a failure (a dead link, a hung close) is logged, not
    raised: the rest of the store must close too."""
    try:
        await asyncio.wait_for(closing, seconds)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:  # TimeoutError too
        logger.warning(
            "postgres close failed",
            extra={"action": "eventstore.close_failed", "what": what, "error": repr(exc)},
        )
