"""What every Postgres connection of ours shares: the session settings that bound how long a
stalled or vanished peer can hold anything, the reset of pooled connections and how a statement
borrows one, and which asyncpg and socket errors mean the database or the link failed.

Nothing we run holds a lock across a client round trip in the steady state (an append is one
statement that is its own transaction), but a node can stall (SIGSTOP, a full disk, a cut link)
anywhere, or be a node of an older version. These settings make the server end such a session
rather than let it hold others up:

- `idle_in_transaction_session_timeout`: a transaction left open while its client is silent;
- `tcp_keepalives_*` and `tcp_user_timeout`: a peer host that vanished (no TCP answer at all) is
  dropped within seconds instead of the kernel's two hours.

A query parameter of the database URL of the same name overrides each of them
(`postgresql://host/db?lock_timeout=5s`): asyncpg passes such parameters to the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Every connection: the server ends a transaction idle on its client, and a vanished peer.
SESSION: Mapping[str, str] = {
    "idle_in_transaction_session_timeout": "2s",
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "2",
    # ms that sent data may stay unacknowledged (a peer whose application is merely slow to read
    # still acknowledges, but a full receive window counts too on recent Linux: not too short)
    "tcp_user_timeout": "10000",
}

# What the driver and the network raise, as opposed to a bug in our code (a TypeError from a
# wrong argument stays a TypeError).
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,  # TimeoutError among others
)

# Errors that mean "the database or the connection failed", as opposed to a bug in a statement.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.QueryCanceledError,  # statement_timeout among others
    asyncpg.LockNotAvailableError,  # lock_timeout
    asyncpg.IdleInTransactionSessionTimeoutError,
    # asyncpg's protocol can be left mid-operation by a connection killed under it
    # (MagicStack/asyncpg#1069): the connection is broken, not the statement.
    asyncpg.InternalClientError,
    TimeoutError,
)


def server_settings(
    dsn: str, application_name: str, defaults: Mapping[str, str] = SESSION
) -> dict[str, str]:
    """`defaults` and the application name, less what the URL's query sets itself (asyncpg lets
    explicit settings win over the URL's, and the URL is the operator's word)."""
    given = {name for name, _ in parse_qsl(urlsplit(dsn).query)}
    settings = {"application_name": application_name, **defaults}
    return {name: value for name, value in settings.items() if name not in given}


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool's reset for connections whose sessions we never change (no LISTEN, SET, advisory
    locks or cursors): asyncpg still rolls back an open transaction, and skips its default
    reset, a round trip of four statements on every release."""


# Connections being given back to their pools (`on_pool`): a task nobody holds may be collected.
_GIVING_BACK: set[asyncio.Task[None]] = set()


async def on_pool(
    pool: asyncpg.Pool, statement: Callable[[PoolConnectionProxy], Awaitable[T]]
) -> T:
    """`statement` on a connection of `pool` (outside a transaction), the connection given back
    in the background once the statement ends.

    asyncpg's own way (`Pool.fetch`, `async with pool.acquire()`) gives it back under
    `asyncio.shield`, in a task of its own: the caller resumes three turns of the event loop
    after its answer came (the task's first step, its end told to the shield, the shield's to
    the caller), and in a burst of joiners each turn is the whole burst's handshake work.
    Given back in the background, the connection is free again a turn or two later, which
    costs a reader nothing unless every connection is out."""
    conn = await pool.acquire()
    try:
        return await statement(conn)
    finally:
        give_back(pool, conn)


def give_back(pool: asyncpg.Pool, conn: PoolConnectionProxy) -> None:
    """Give `conn` back to `pool` in the background, without holding its caller (`on_pool`).
    A connection left inside a transaction is rolled back by the pool's reset."""
    task = asyncio.get_running_loop().create_task(pool.release(conn))
    _GIVING_BACK.add(task)
    task.add_done_callback(_given_back)


def _given_back(task: asyncio.Task[None]) -> None:
    _GIVING_BACK.discard(task)
    error = None if task.cancelled() else task.exception()
    if error is not None:  # asyncpg has closed the connection it could not reset
        logger.warning(
            "a pooled connection could not be given back",
            extra={"action": "sql.release_failed", "error": repr(error)},
        )
