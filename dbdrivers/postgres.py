"""What every Postgres connection of ours shares: the session settings that bound how long a
stalled or vanished peer can hold anything, the reset of pooled connections, and which asyncpg
and socket errors mean the database or the link failed.

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

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

import asyncpg

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
