"""Named locks that one process at a time holds across every node on one database, and that pass
to another process when the holder dies: the projection runner's "one active runner per
projection" (and a rebuild's "one rebuild at a time").

On Postgres, session advisory locks held by one dedicated connection of their own (never a pooled
one: a pooled connection's session would outlive the lock's holder). When the holder dies, SIGKILL
included, Postgres ends its session as soon as the socket closes (or, for a host that vanished,
once the TCP keepalives of `dbdrivers.postgres.SESSION` give up, in about four seconds) and the
locks go with it. The holder watches its connection: when it is lost, every lock it held is marked
lost, so that the work done under it stops. Work must still be safe if two holders overlap for a
moment (a holder that has not noticed yet): the runner's checkpoint row, locked in each batch's
transaction, sees to that.

SQLite (and the in-memory log) has one process: the locks are held in it."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Protocol

import asyncpg

from dbdrivers.postgres import DRIVER_ERRORS, SESSION, server_settings

logger = logging.getLogger(__name__)

_GONE: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, TimeoutError)


class Lock:
    """A held lock: `lost` is set when it is no longer held (the holder's connection went)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost = asyncio.Event()


class Locks(Protocol):
    async def try_acquire(self, name: str) -> Lock | None:
        """The lock if no one holds it, else None (this process holding it counts as held)."""
        ...

    async def release(self, lock: Lock) -> None: ...

    async def close(self) -> None: ...


class LocalLocks:
    """One process's locks (SQLite, the in-memory log)."""

    def __init__(self) -> None:
        self._held: dict[str, Lock] = {}

    async def try_acquire(self, name: str) -> Lock | None:
        if name in self._held:
            return None
        lock = self._held[name] = Lock(name)
        return lock

    async def release(self, lock: Lock) -> None:
        if self._held.get(lock.name) is lock:
            del self._held[lock.name]

    async def close(self) -> None:
        for lock in self._held.values():
            lock.lost.set()
        self._held.clear()


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for `name` (stable across processes and versions)."""
    digest = hashlib.blake2b(f"jacameno:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLocks:
    """Advisory locks on a dedicated connection, checked every `check_interval` seconds."""

    def __init__(self, dsn: str, *, check_interval: float = 1.0) -> None:
        self._dsn = dsn
        self._check_interval = check_interval
        self._conn: asyncpg.Connection | None = None
        self._held: dict[str, Lock] = {}
        self._guard = asyncio.Lock()  # one statement at a time on the connection
        self._watch: asyncio.Task[None] | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=10,
                server_settings=server_settings(self._dsn, "jacameno-locks", SESSION),
            )
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watching(), name="sql-locks-watch")
        return self._conn

    async def try_acquire(self, name: str) -> Lock | None:
        async with self._guard:
            if name in self._held:
                return None
            try:
                conn = await self._connection()
                got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(name))
            except DRIVER_ERRORS:
                logger.warning(
                    "could not try a lock; will try again",
                    exc_info=True,
                    extra={"action": "sql.lock_try_failed", "lock": name},
                )
                await self._lose_all()
                return None
            if not got:
                return None
            lock = self._held[name] = Lock(name)
            return lock

    async def release(self, lock: Lock) -> None:
        async with self._guard:
            if self._held.get(lock.name) is not lock:
                return
            del self._held[lock.name]
            if self._conn is None or self._conn.is_closed():
                return
            try:
                await self._conn.execute("SELECT pg_advisory_unlock($1)", lock_key(lock.name))
            except DRIVER_ERRORS:  # the session, and the lock with it, is gone or going
                await self._lose_all()

    async def _watching(self) -> None:
        while True:
            await asyncio.sleep(self._check_interval)
            async with self._guard:
                if not self._held or self._conn is None:
                    continue
                try:
                    async with asyncio.timeout(max(self._check_interval, 2.0)):
                        await self._conn.fetchval("SELECT 1")
                except _GONE:
                    logger.warning(
                        "the locks' connection is lost; every lock it held is lost",
                        exc_info=True,
                        extra={"action": "sql.locks_lost", "locks": sorted(self._held)},
                    )
                    await self._lose_all()

    async def _lose_all(self) -> None:
        for lock in self._held.values():
            lock.lost.set()
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.wait([watch])
        async with self._guard:
            for lock in self._held.values():
                lock.lost.set()
            self._held.clear()
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except _GONE:
                    conn.terminate()


def open_locks(url: str) -> Locks:
    """The locks of the database `url` names (nothing is opened until a lock is tried)."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresLocks(url)
    return LocalLocks()
