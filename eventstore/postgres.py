"""The Postgres backend (asyncpg): group commit through one writer connection, reads through a
pool, and LISTEN/NOTIFY to wake subscribers.

Usually a batch costs one round trip: it is decided on the stream versions the writer remembers
(looked up for streams it has not seen), then written by one statement that is its own transaction:
take the sequencer row, insert every accepted event with one multi-row insert (`unnest`), notify
subscribers. The sequencer's row lock is taken last and held until commit, so positions are gapless
and in commit order across every process. A writer in another process makes a remembered version
stale: the insert then collides on the unique (stream, version) key, and the batch is decided
again in a transaction that takes the sequencer first and reads the versions under it. A conflict
found on a remembered version is checked against the database before it is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from eventstore.errors import (
    ConcurrencyError,
    EventStoreError,
    InvalidEventError,
    StoreClosedError,
    StoreUnavailableError,
)
from eventstore.groupcommit import GroupCommitter, Pacing
from eventstore.limits import (
    Limits,
    check_position,
    check_snapshot,
    check_stream,
    check_version,
)
from eventstore.model import ANY, AppendResult, NewEvent, RecordedEvent, Snapshot
from eventstore.planning import (
    Accepted,
    AppendRequest,
    BatchAnswer,
    BatchPlanner,
    Outcome,
    PriorEvent,
    Rejected,
    answer_for,
)
from eventstore.signal import CommitSignal
from eventstore.subscription import Subscription

logger = logging.getLogger(__name__)

CHANNEL = "es_events"
_COLUMNS = "position, stream, version, type, data, metadata::text, idempotency_key, recorded_at"
_MAX_ATTEMPTS = 5
_MAX_REMEMBERED = 100_000  # stream versions the writer remembers between batches

_VERSIONS = """
SELECT s.name, coalesce((SELECT e.version FROM es_events e WHERE e.stream = s.name
                         ORDER BY e.version DESC LIMIT 1), 0)
FROM unnest($1::text[]) AS s(name)
"""

_PRIOR = """
SELECT e.stream, e.idempotency_key, e.version, e.position, e.type, e.data
FROM unnest($1::text[], $2::text[]) AS k(stream, key)
JOIN es_events e ON e.stream = k.stream AND e.idempotency_key = k.key
"""

_INSERT = f"""
WITH seq AS (
    UPDATE es_sequencer SET position = position + $1 WHERE id = 1
    RETURNING position - $1 AS base
), ins AS (
    INSERT INTO es_events (position, stream, version, type, data, metadata, idempotency_key)
    SELECT seq.base + r.ord, r.stream, r.version, r.type, r.data, r.metadata::jsonb, r.key
    FROM seq, unnest($2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::text[], $7::text[])
         WITH ORDINALITY AS r(stream, version, type, data, metadata, key, ord)
    RETURNING 1
)
SELECT base, (SELECT count(*) FROM ins), pg_notify('{CHANNEL}', (base + $1)::text) FROM seq
"""

# Errors that mean "the database or the connection failed", as opposed to a bug in a statement.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.QueryCanceledError,
    # asyncpg's protocol can be left mid-operation by a connection killed under it
    # (MagicStack/asyncpg#1069): the connection is broken, not the statement.
    asyncpg.InternalClientError,
    TimeoutError,
)


def translate(exc: BaseException) -> EventStoreError:
    """Map an asyncpg or socket error to the event store's tree."""
    if isinstance(exc, EventStoreError):
        return exc
    if isinstance(exc, asyncpg.UndefinedTableError):
        return EventStoreError(f"the event store schema is missing ({exc}): run `jacameno migrate`")
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailableError(f"postgres: {type(exc).__name__}: {exc}")
    return EventStoreError(f"postgres: {type(exc).__name__}: {exc}")


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool's reset for connections whose sessions we never change (no LISTEN, SET, advisory
    locks or cursors): asyncpg still rolls back an open transaction, and skips its default
    reset, a round trip of four statements on every release."""


def _record(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(row[0], row[1], row[2], row[3], row[4], row[5], row[7], row[6])


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
    ) -> None:
        self.dsn = dsn
        self.limits = limits or Limits()
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._writer: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._listener_retry_at = 0.0
        self._listener_lock = asyncio.Lock()
        self._versions: dict[str, int] = {}  # remembered by the writer; checked on collision
        self._committer = GroupCommitter(
            self._commit_batch, max_events=max_batch_events, pacing=pacing
        )
        self._signal = CommitSignal()
        self._poll_interval = poll_interval
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
                server_settings={"application_name": "jacameno-eventstore-reader"},
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
            rows: list[asyncpg.Record] = await self._readers().fetch(query, *args)
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

    async def _writer_connection(self) -> asyncpg.Connection:
        if self._writer is None or self._writer.is_closed():
            self._writer = await asyncpg.connect(
                self.dsn,
                timeout=self._connect_timeout,
                server_settings={
                    "application_name": "jacameno-eventstore-writer",
                    "synchronous_commit": "on",
                },
            )
        return self._writer

    async def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.terminate()

    async def _commit_batch(self, requests: list[AppendRequest]) -> list[BatchAnswer]:
        """Write a batch. Failures that left it certainly unwritten are retried on a fresh
        connection; one whose outcome is unknown is looked up; StoreUnavailableError if that
        cannot be learned or the attempts run out."""
        failure: BaseException | None = None
        contended = False
        for attempt in range(_MAX_ATTEMPTS):
            if attempt and not isinstance(failure, asyncpg.UniqueViolationError):
                await asyncio.sleep(0.05 * attempt)
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._writer_connection()
                if contended:
                    answers, head = await self._write_locked(conn, requests)
                else:
                    answers, head = await self._write_fast(conn, requests)
            except asyncpg.UniqueViolationError as exc:
                # Another process took a version first: forget the versions we remembered and
                # decide again, this time holding the sequencer from the start, so that two busy
                # processes cannot starve each other.
                self._versions.clear()
                failure, contended = exc, True
                continue
            except _OutcomeUnknown as unknown:
                await self._drop_writer()
                self._versions.clear()
                resolved = await self._resolve(unknown)
                if resolved is None:
                    failure = unknown.__cause__
                    continue
                answers, head = resolved
            except Exception as exc:
                # A connection cut under a statement fails it with whatever error asyncpg meets
                # (even AttributeError): the connection broke, not the batch.
                broken = conn is not None and conn.is_closed()
                await self._drop_writer()
                failure = exc
                if broken or isinstance(translate(exc), StoreUnavailableError):
                    continue
                raise translate(exc) from exc
            if head:
                self._signal.publish(head)
            return answers
        # Every failure retried above left the batch certainly unwritten: the client may retry.
        raise StoreUnavailableError(
            f"postgres: append failed {_MAX_ATTEMPTS} times, last with {failure!r}"
        ) from failure

    async def _write_fast(
        self, conn: asyncpg.Connection, requests: list[AppendRequest]
    ) -> tuple[list[BatchAnswer], int]:
        """The usual path: decide on remembered versions, then one statement that is its own
        transaction (no BEGIN, no COMMIT round trip)."""
        plans, planner = await self._decide(conn, requests, remembered=True)
        if not planner.rows:
            return [answer_for(r, p, 0) for r, p in zip(requests, plans, strict=True)], 0
        pid = conn.get_server_pid()  # asked now: a terminated connection no longer knows it
        try:
            row = await conn.fetchrow(_INSERT, planner.rows, *_columns(requests, plans))
        except asyncpg.UniqueViolationError:
            raise
        except Exception as exc:
            raise _OutcomeUnknown(requests, plans, planner, pid) from exc
        assert row is not None
        return self._committed(requests, plans, planner, int(row[0]))

    async def _write_locked(
        self, conn: asyncpg.Connection, requests: list[AppendRequest]
    ) -> tuple[list[BatchAnswer], int]:
        """The path after a collision with another process: a transaction that takes the
        sequencer first, then reads the versions under that lock."""
        pid = conn.get_server_pid()
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SELECT 1 FROM es_sequencer WHERE id = 1 FOR UPDATE")
            plans, planner = await self._decide(conn, requests, remembered=False)
            row = None
            if planner.rows:
                row = await conn.fetchrow(_INSERT, planner.rows, *_columns(requests, plans))
        except BaseException:
            with contextlib.suppress(Exception):
                await transaction.rollback()
            raise
        try:
            await transaction.commit()
        except Exception as exc:
            if row is None:
                raise
            raise _OutcomeUnknown(requests, plans, planner, pid) from exc
        if row is None:
            return [answer_for(r, p, 0) for r, p in zip(requests, plans, strict=True)], 0
        return self._committed(requests, plans, planner, int(row[0]))

    async def _decide(
        self, conn: asyncpg.Connection, requests: list[AppendRequest], *, remembered: bool
    ) -> tuple[list[Outcome], BatchPlanner]:
        streams = sorted({r.stream for r in requests})
        versions = {s: self._versions[s] for s in streams if remembered and s in self._versions}
        missing = [s for s in streams if s not in versions]
        if missing:
            versions.update({r[0]: r[1] for r in await conn.fetch(_VERSIONS, missing)})
        pairs = sorted({(r.stream, k) for r in requests for k in r.keys})
        prior: dict[tuple[str, str], PriorEvent] = {}
        if pairs:
            rows = await conn.fetch(_PRIOR, [p[0] for p in pairs], [p[1] for p in pairs])
            prior = {(r[0], r[1]): PriorEvent(r[2], r[3], r[4], r[5]) for r in rows}
        planner = BatchPlanner(versions, prior)
        plans = [planner.plan(r) for r in requests]
        stale = {
            r.stream
            for r, p in zip(requests, plans, strict=True)
            if isinstance(p, Rejected)
            and isinstance(p.error, ConcurrencyError)
            and r.stream not in missing
        }
        if stale:
            # A conflict decided on a remembered version may only mean another process wrote:
            # ask the database before telling the appender.
            for stream in stale:
                self._versions.pop(stream, None)
            return await self._decide(conn, requests, remembered=remembered)
        return plans, planner

    def _committed(
        self,
        requests: list[AppendRequest],
        plans: list[Outcome],
        planner: BatchPlanner,
        base: int,
    ) -> tuple[list[BatchAnswer], int]:
        if len(self._versions) > _MAX_REMEMBERED:
            self._versions.clear()
        self._versions.update(planner.versions)
        answers = [answer_for(r, p, base) for r, p in zip(requests, plans, strict=True)]
        return answers, base + planner.rows

    async def _resolve(self, unknown: _OutcomeUnknown) -> tuple[list[BatchAnswer], int] | None:
        """Whether a batch whose outcome is unknown committed: end its server process (a
        transaction left open aborts; a commit under way completes), wait until it is gone,
        then look its first event up by content. None if it did not commit; raises
        StoreUnavailableError if that cannot be learned."""
        request, plan = next(
            (r, p)
            for r, p in zip(unknown.requests, unknown.plans, strict=True)
            if isinstance(p, Accepted)
        )
        assert isinstance(plan, Accepted)
        event = request.events[0]
        try:
            async with self._readers().acquire() as conn:
                await conn.execute("SELECT pg_terminate_backend($1)", unknown.pid)
                async with asyncio.timeout(self._connect_timeout):
                    while await conn.fetchval(  # noqa: ASYNC110 (the server has no event to await)
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", unknown.pid
                    ):
                        await asyncio.sleep(0.01)
                row = await conn.fetchrow(
                    "SELECT position, type, data, metadata::text FROM es_events"
                    " WHERE stream = $1 AND version = $2",
                    request.stream,
                    plan.first_version,
                )
        except Exception as exc:
            raise StoreUnavailableError(
                f"the outcome of an append is unknown ({exc}); retry it with its idempotency keys"
            ) from exc
        ours = (
            row is not None
            and (row[1], row[2]) == (event.type, event.data)
            and json.loads(row[3]) == json.loads(event.metadata_json)
        )
        logger.warning(
            "append failed under way; looked up its outcome",
            extra={"action": "append.outcome_unknown", "committed": ours},
        )
        if not ours:
            return None
        assert row is not None
        base = int(row[0]) - 1 - plan.row_offset
        return self._committed(unknown.requests, unknown.plans, unknown.planner, base)

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
        rows = await self._fetch(
            """
            WITH target AS (
                SELECT $2 > 0
                    AND EXISTS (SELECT 1 FROM es_events WHERE stream = $1 AND version = $2) AS ok
            ), saved AS (
                INSERT INTO es_snapshots (stream, version, state, metadata)
                SELECT $1::text, $2::bigint, $3::bytea, $4::jsonb
                WHERE (SELECT ok FROM target) AND (
                    SELECT count(*) FROM es_snapshots WHERE stream = $1 AND version > $2
                ) < $5
                ON CONFLICT (stream, version) DO UPDATE
                    SET state = EXCLUDED.state, metadata = EXCLUDED.metadata,
                        recorded_at = EXCLUDED.recorded_at
                RETURNING version
            ), pruned AS (
                DELETE FROM es_snapshots
                WHERE stream = $1 AND EXISTS (SELECT 1 FROM saved) AND version NOT IN (
                    SELECT version FROM es_snapshots WHERE stream = $1
                    UNION SELECT $2::bigint ORDER BY version DESC LIMIT $5
                )
            )
            SELECT ok FROM target
            """,
            stream,
            version,
            state,
            meta,
            self.limits.snapshots_per_stream,
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
        return [_record(r) for r in rows]

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        after = check_position(after_position)
        count = check_version(limit, "limit")
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM es_events WHERE position > $1 ORDER BY position LIMIT $2",
            after,
            count,
        )
        return [_record(r) for r in rows]

    def subscribe(self, after_position: int = 0, *, batch_size: int = 1000) -> Subscription:
        check_position(after_position)
        return Subscription(
            self, after_position, batch_size=batch_size, poll_interval=self._poll_interval
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
                server_settings={"application_name": "jacameno-eventstore-listener"},
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

    async def terminate_connections(self) -> None:
        """Cut the writer and listener connections abruptly, as a network failure would."""
        for conn in (self._writer, self._listener):
            if conn is not None and not conn.is_closed():
                conn.terminate()

    async def close(self) -> None:
        if self._closed:
            return
        await self._committer.close()
        self._closed = True
        self._signal.poke()
        async with self._listener_lock:  # a listener being connected is closed with the rest
            for conn in (self._writer, self._listener):
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            self._writer = self._listener = None
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), 5)
            self._pool = None


class _OutcomeUnknown(Exception):
    """The statement that writes a batch (or its COMMIT) failed: it may or may not have
    committed."""

    def __init__(
        self,
        requests: list[AppendRequest],
        plans: list[Outcome],
        planner: BatchPlanner,
        pid: int,
    ) -> None:
        super().__init__("append outcome unknown")
        self.requests = requests
        self.plans = plans
        self.planner = planner
        self.pid = pid


def _columns(requests: list[AppendRequest], plans: list[Outcome]) -> tuple[list[Any], ...]:
    """The accepted events of a batch as the insert's six column arrays."""
    cols: tuple[list[Any], ...] = ([], [], [], [], [], [])
    streams, versions, types, datas, metas, keys = cols
    for request, plan in zip(requests, plans, strict=True):
        if isinstance(plan, Accepted):
            for i, e in enumerate(request.events):
                streams.append(request.stream)
                versions.append(plan.first_version + i)
                types.append(e.type)
                datas.append(e.data)
                metas.append(e.metadata_json)
                keys.append(e.idempotency_key)
    return cols
