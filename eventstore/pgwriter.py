"""The Postgres event store's writing side: one connection, the stream versions it remembers
between batches, and the batch's way into the log.

Every write is one statement that is its own transaction: the server takes the `es_sequencer`
row lock, inserts and commits inside its execution of that statement, so the lock that orders
every node's commits is never held while the server waits for a client. A node that stalls or
loses its link (SIGSTOP, a cut network, a vanished host) therefore holds up no other node.

Usually a batch is decided on the versions the writer remembers (looked up for streams it has not
seen) and written by `_INSERT`: take the sequencer, insert every accepted event with one
multi-row insert (`unnest`), notify subscribers. A writer in another process makes a remembered
version stale: the insert then collides on the unique (stream, version) key, and the batch is
written by `es_append_checked` (migration 0006) instead: a function that takes the sequencer,
checks under it that every stream of the batch is still at the version the batch was decided on,
and only then inserts. A batch whose every append expects ANY version and has no idempotency
keys (the collaboration rooms' appends) does not depend on the versions: the function numbers
its rows after the versions it found, so it is written at the first try, in lock order, however
busy the other writers. Any other batch whose streams moved is refused, comes back with their
current versions, and is decided and sent again (each refusal means another writer committed).
A conflict found on a remembered version is checked against the database before it is
reported.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from dbdrivers.postgres import server_settings
from eventstore.errors import ConcurrencyError, StoreUnavailableError
from eventstore.model import ANY
from eventstore.pgsession import WRITER, translate
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

logger = logging.getLogger(__name__)

CHANNEL = "es_events"
APPLICATION = "jacameno-eventstore-writer"
_MAX_ATTEMPTS = 5
_MAX_ROUNDS = 50  # decisions of one batch refused because another writer moved its streams
_MAX_REMEMBERED = 100_000  # stream versions the writer remembers between batches
STALLED_AFTER = 1.0  # seconds a writer may wait for its client inside a write transaction

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

_CHECKED = "SELECT base, current FROM es_append_checked($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"

# A writer whose transaction has written, waiting for its client for longer than STALLED_AFTER:
# a node stalled inside a write (or one of an older version that held the sequencer across round
# trips). Ending it aborts its transaction and frees the sequencer; that node looks its outcome up.
_END_STALLED = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = $1 AND wait_event = 'ClientRead'
  AND backend_xid IS NOT NULL AND state_change < now() - make_interval(secs => $2)
"""


class PostgresWriter:
    """Writes batches through one connection; `readers` gives the store's pool (for looking an
    outcome up and ending stalled writers), `publish` is told each new head position."""

    def __init__(
        self,
        dsn: str,
        readers: Callable[[], asyncpg.Pool],
        publish: Callable[[int], None],
        *,
        connect_timeout: float,
        command_timeout: float,
    ) -> None:
        self.dsn = dsn
        self._readers = readers
        self._publish = publish
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self.connection: asyncpg.Connection | None = None
        self._versions: dict[str, int] = {}  # remembered; checked on collision

    async def _connection(self) -> asyncpg.Connection:
        if self.connection is None or self.connection.is_closed():
            self.connection = await asyncpg.connect(
                self.dsn,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings=server_settings(self.dsn, APPLICATION, WRITER),
            )
        return self.connection

    def drop(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except Exception as exc:  # a server that no longer answers: drop the connection
                conn.terminate()
                logger.warning(
                    "the writer's connection did not close cleanly; terminated",
                    extra={"action": "append.close_failed", "error": repr(exc)},
                )

    async def commit_batch(self, requests: list[AppendRequest]) -> list[BatchAnswer]:
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
                conn = await self._connection()
                if contended:
                    answers, head = await self._write_checked(conn, requests)
                else:
                    answers, head = await self._write_fast(conn, requests)
            except asyncpg.UniqueViolationError as exc:
                # Another process took a version first: forget the versions we remembered and
                # write this batch with the checked statement, which cannot collide.
                self._versions.clear()
                failure, contended = exc, True
                continue
            except asyncpg.LockNotAvailableError as exc:
                # The sequencer stayed locked for lock_timeout: perhaps by a stalled writer.
                failure = exc
                await self._end_stalled_writers()
                continue
            except _OutcomeUnknown as unknown:
                self.drop()
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
                self.drop()
                failure = exc
                if broken or isinstance(translate(exc), StoreUnavailableError):
                    continue
                raise translate(exc) from exc
            if head:
                self._publish(head)
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
        plans, planner, _ = await self._decide(conn, requests)
        if not planner.rows:
            return [answer_for(r, p, 0) for r, p in zip(requests, plans, strict=True)], 0
        row = await self._send(conn, requests, plans, planner, _INSERT)
        return self._committed(requests, plans, planner, int(row[0]))

    async def _write_checked(
        self, conn: asyncpg.Connection, requests: list[AppendRequest]
    ) -> tuple[list[BatchAnswer], int]:
        """The path after a collision with another process: one statement that writes only if
        every stream of the batch is still at the version the batch was decided on, or numbers
        the rows after the versions it found if the decision does not depend on them."""
        rebase = all(r.expected == ANY and not r.keys for r in requests)
        for _ in range(_MAX_ROUNDS):
            plans, planner, basis = await self._decide(conn, requests)
            if not planner.rows:
                return [answer_for(r, p, 0) for r, p in zip(requests, plans, strict=True)], 0
            streams = sorted(basis)
            check = (streams, [basis[s] for s in streams], rebase)
            row = await self._send(conn, requests, plans, planner, _CHECKED, *check)
            found = dict(zip(streams, (int(v) for v in row[1]), strict=True))
            if row[0] is not None and found != basis:
                # Rebased: the same decision on the versions found, as the function numbered it.
                planner = BatchPlanner(found, {})
                plans = [planner.plan(r) for r in requests]
            if row[0] is not None:
                return self._committed(requests, plans, planner, int(row[0]))
            self._versions.update(found)
        raise StoreUnavailableError(
            f"postgres: other writers moved this batch's streams {_MAX_ROUNDS} times in a row"
        )

    async def _send(
        self,
        conn: asyncpg.Connection,
        requests: list[AppendRequest],
        plans: list[Outcome],
        planner: BatchPlanner,
        statement: str,
        *check: Any,
    ) -> asyncpg.Record:
        """Run the statement that writes; _OutcomeUnknown if it failed in a way that may have
        committed (errors the server reports before writing anything pass through)."""
        pid = conn.get_server_pid()  # asked now: a terminated connection no longer knows it
        try:
            row = await conn.fetchrow(statement, planner.rows, *check, *_columns(requests, plans))
        except (asyncpg.UniqueViolationError, asyncpg.LockNotAvailableError):
            raise
        except Exception as exc:
            raise _OutcomeUnknown(requests, plans, planner, pid) from exc
        assert row is not None
        return row

    async def _decide(
        self, conn: asyncpg.Connection, requests: list[AppendRequest]
    ) -> tuple[list[Outcome], BatchPlanner, dict[str, int]]:
        """Plans for the requests, the planner, and the versions they were decided on."""
        streams = sorted({r.stream for r in requests})
        versions = {s: self._versions[s] for s in streams if s in self._versions}
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
            return await self._decide(conn, requests)
        return plans, planner, versions

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

    async def _end_stalled_writers(self) -> None:
        """End writers idle on their client inside a write transaction (see _END_STALLED)."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                ended = await self._readers().fetchval(_END_STALLED, APPLICATION, STALLED_AFTER)
        except Exception as exc:  # the next attempt will tell what is wrong
            logger.warning(
                "cannot look for stalled writers",
                extra={"action": "append.stalled_lookup_failed", "error": repr(exc)},
            )
            return
        if ended:
            logger.warning(
                "ended writers stalled inside a transaction",
                extra={"action": "append.stalled_writer_ended", "count": ended},
            )

    async def _resolve(self, unknown: _OutcomeUnknown) -> tuple[list[BatchAnswer], int] | None:
        """Whether a batch whose outcome is unknown committed: end its server process (a
        transaction left open aborts; a commit under way completes), wait until it is gone,
        then look its first event up by content. None if it did not commit; raises
        StoreUnavailableError if that cannot be learned within the connect timeout."""
        request, plan = next(
            (r, p)
            for r, p in zip(unknown.requests, unknown.plans, strict=True)
            if isinstance(p, Accepted)
        )
        assert isinstance(plan, Accepted)
        event = request.events[0]
        try:
            async with asyncio.timeout(self._connect_timeout), self._readers().acquire() as conn:
                await conn.execute("SELECT pg_terminate_backend($1)", unknown.pid)
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
                f"the outcome of an append is unknown ({exc!r}); retry it with its idempotency keys"
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


class _OutcomeUnknown(Exception):
    """The statement that writes a batch failed: it may or may not have committed."""

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
