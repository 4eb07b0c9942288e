"""Turns for project commands: the commands on one project run one at a time, across every node.

Every document edit is appended to the project's stream too, so a command that guarded its
append with the stream's exact version would race the editors (and lose, under heavy editing).
Commands take turns instead: while a command holds its project's turn, no other command appends
to that stream, so what it decided on stays true until its own events are appended, whatever
edits land meanwhile.

`ProcessTurns` serves one process (SQLite: the log has one writer process). `PostgresTurns`
holds a transaction-scoped advisory lock on connections of its own, so that a command waiting
for its turn never holds a connection that the read model or the projection runner need."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from sqldb import Database, DatabaseError, PostgresDatabase

logger = logging.getLogger(__name__)

# The first key of the two-key advisory lock: a namespace that no other lock of ours uses.
LOCK_CLASS = 0x6A636D64  # "jcmd"
# How long a turn's transaction may sit idle while its command works (reads the read model,
# waits for a projection up to eventstore.progress.WAIT_LIMIT, appends). The sessions' default
# (dbdrivers.postgres.SESSION, 2 s) is for transactions that do database work only: under it a
# command slower than 2 s lost its session, its turn with it, and answered 503 for a change it
# had made. A node that stalls longer than this still lets the project's turn go.
TURN_IDLE_LIMIT = "60s"


class Turns(Protocol):
    def hold(self, key: str, timeout: float) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold `key`'s turn for the block; TimeoutError if it is not ours within `timeout`."""
        ...

    async def close(self) -> None: ...


class ProcessTurns:
    """Turns among the tasks of one process."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}  # tasks holding or waiting, to forget idle keys

    @contextlib.asynccontextmanager
    async def hold(self, key: str, timeout: float) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with asyncio.timeout(timeout):
                await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key], self._locks[key]

    async def close(self) -> None:
        return None


class PostgresTurns:
    """Turns across the nodes of one Postgres database; one process's tasks queue in
    `ProcessTurns` first, so each waits on Postgres with at most one connection per key."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._local = ProcessTurns()

    @classmethod
    async def open(cls, url: str, *, connections: int = 2) -> PostgresTurns:
        session = {"idle_in_transaction_session_timeout": TURN_IDLE_LIMIT}
        return cls(await PostgresDatabase.open(url, pool_size=connections, session=session))

    @contextlib.asynccontextmanager
    async def hold(self, key: str, timeout: float) -> AsyncIterator[None]:
        deadline = asyncio.get_running_loop().time() + timeout
        failure: BaseException | None = None
        held = False
        try:
            async with (
                self._local.hold(key, timeout),
                asyncio.timeout_at(deadline) as bound,  # outside the transaction: not its failure
                self._db.transaction() as conn,
            ):
                lock = "SELECT pg_advisory_xact_lock($1, hashtext($2))"
                await conn.execute(lock, LOCK_CLASS, key)
                bound.reschedule(None)
                held = True
                try:
                    yield  # the transaction ends, and the lock with it, when the block does
                except BaseException as exc:  # the block's, not the database's: raised as it is
                    failure = exc
        except DatabaseError:
            if not held:
                raise
            # Only the release failed (the session was lost while the block ran): the lock went
            # with the session, and what the block did stands, so its caller is not told it
            # failed.
            logger.warning(
                "a project's turn was lost before its command ended",
                exc_info=True,
                extra={"action": "projects.turn_lost", "key": key},
            )
        if failure is not None:
            raise failure

    async def close(self) -> None:
        await self._db.close()
