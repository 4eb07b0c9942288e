"""Sockets that are open but have not authenticated yet, bounded in number and in time.

`/hocuspocus` accepts a socket before it sees a token (the token comes in-band, per document).
Such a socket waits in the node's `Lobby` until one of its documents is authenticated: at most
`max_unauthenticated_sockets` wait at once (one more is closed with 1013 at once), and a socket
that has had no authenticated document for `auth_timeout` seconds is closed with 4401. A socket
whose last document leaves (closed by the client, or its access revoked) waits again, under the
same deadline. docs/security.md lists the limits."""

from __future__ import annotations

import asyncio
import logging

from jacameno.collab.connection import Connection
from jacameno.collab.errors import UNAUTHENTICATED

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_REASON = "authentication timeout"


class Lobby:
    """The node's count of sockets without an authenticated document."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0

    def enter(self, *, force: bool = False) -> bool:
        """Count one more waiting socket; False (and not counted) when the lobby is full,
        unless `force` (a socket that was authenticated before is counted whatever the bound,
        its deadline still applies)."""
        if self.waiting >= self.limit and not force:
            return False
        self.waiting += 1
        return True

    def leave(self) -> None:
        self.waiting -= 1


class Admission:
    """One socket's passage through the lobby: waiting while it has no authenticated
    document, under a deadline that closes it with 4401."""

    def __init__(self, lobby: Lobby, connection: Connection, timeout: float) -> None:
        self._lobby = lobby
        self._connection = connection
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = False

    def open(self) -> bool:
        """The socket arrives without a token; False when the lobby is full."""
        if not self._lobby.enter():
            return False
        self._wait()
        return True

    def update(self, authenticated: bool) -> None:
        """Whether the socket now has at least one authenticated document."""
        if authenticated and self._waiting:
            self._stop_waiting()
        elif not authenticated and not self._waiting:
            self._lobby.enter(force=True)
            self._wait()

    def close(self) -> None:
        if self._waiting:
            self._stop_waiting()

    def _wait(self) -> None:
        self._waiting = True
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, self._expire)

    def _stop_waiting(self) -> None:
        self._waiting = False
        self._lobby.leave()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if not self._waiting or self._connection.closing:
            return
        logger.info(
            "unauthenticated socket closed",
            extra={"action": "collab.auth_timeout", "connection": self._connection.id},
        )
        self._connection.close(UNAUTHENTICATED, AUTH_TIMEOUT_REASON)
