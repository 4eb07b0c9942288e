"""Refresh-token sessions: rotating refresh tokens grouped in families (one per login).

A refresh token is `{session_id}.{generation}.{mac}`, the MAC an HMAC of the first two parts with
a key derived from the signing secret, so stores hold no token. Each refresh advances the session
to the next generation and hands out its token; presenting a token of an earlier generation (one
already used: stolen, or replayed) revokes the whole family, except the token rotated away last,
which for a short grace after its rotation yields the current pair again (two tabs refreshing at
once both stay logged in). Sessions live in the database, whatever else is configured: a Redis
outage or an empty Redis after a restart never logs anyone out (docs/security.md, "Accounts and
sessions")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from sqldb import Database


class SessionInvalid(Exception):
    """The refresh token is malformed, forged, unknown, expired or revoked."""


class SessionReused(SessionInvalid):
    """A refresh token was presented after it had been rotated; its family is now revoked."""


class SessionStore(Protocol):
    async def create(self, session_id: str, user_id: str, expires_at_ms: int) -> None:
        """Record a new session at generation 0."""
        ...

    async def advance(self, session_id: str, generation: int, now_ms: int, grace_ms: int) -> str:
        """Atomically move the session from `generation` to the next one; return its user id.
        The generation just before the current one, presented at most `grace_ms` after the
        session moved past it, returns the user id and moves nothing (the caller hands out the
        current generation's token again). Unknown, expired or revoked sessions raise
        SessionInvalid; any other earlier generation revokes the session and raises
        SessionReused. Of concurrent calls with one generation, at most one advances."""
        ...

    async def revoke(self, session_id: str) -> None:
        """Revoke the session (idempotent; unknown sessions are ignored)."""
        ...


class DatabaseSessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, session_id: str, user_id: str, expires_at_ms: int) -> None:
        now = int(time.time() * 1000)
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM refresh_sessions WHERE expires_at < $1", now)
            await conn.execute(
                "INSERT INTO refresh_sessions"
                " (id, user_id, generation, revoked, created_at, expires_at, rotated_at)"
                " VALUES ($1, $2, 0, 0, $3, $4, $3)",
                session_id,
                user_id,
                now,
                expires_at_ms,
            )

    async def advance(self, session_id: str, generation: int, now_ms: int, grace_ms: int) -> str:
        lock = " FOR UPDATE" if self._db.kind == "postgres" else ""
        async with self._db.transaction() as conn:
            row = await conn.fetchrow(
                "SELECT user_id, generation, revoked, expires_at, rotated_at FROM refresh_sessions"
                f" WHERE id = $1{lock}",
                session_id,
            )
            if row is None or row["revoked"] or row["expires_at"] <= now_ms:
                raise SessionInvalid("unknown, expired or revoked session")
            current = row["generation"]
            if generation == current - 1 and now_ms - row["rotated_at"] < grace_ms:
                return str(row["user_id"])
            if generation < current:
                await conn.execute(
                    "UPDATE refresh_sessions SET revoked = 1 WHERE id = $1", session_id
                )
            elif generation == current:
                await conn.execute(
                    "UPDATE refresh_sessions SET generation = generation + 1, rotated_at = $2"
                    " WHERE id = $1",
                    session_id,
                    now_ms,
                )
                return str(row["user_id"])
            else:
                raise SessionInvalid("unknown generation")
        raise SessionReused("refresh token reused; session revoked")

    async def revoke(self, session_id: str) -> None:
        await self._db.execute("UPDATE refresh_sessions SET revoked = 1 WHERE id = $1", session_id)


class RefreshTokens:
    """Mints, checks and rotates refresh tokens over a SessionStore."""

    def __init__(
        self,
        store: SessionStore,
        secret: str,
        ttl_seconds: int,
        grace_seconds: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (seconds since the epoch) dates sessions and rotations; tests move their own."""
        self.clock = clock
        self._store = store
        self._key = hmac.new(secret.encode(), b"jacameno refresh tokens", hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds
        self.grace_ms = int(grace_seconds * 1000)

    def _mac(self, session_id: str, generation: int) -> str:
        digest = hmac.new(self._key, f"{session_id}.{generation}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()

    def _token(self, session_id: str, generation: int) -> str:
        return f"{session_id}.{generation}.{self._mac(session_id, generation)}"

    def _parse(self, token: str) -> tuple[str, int]:
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
            raise SessionInvalid("malformed refresh token")
        session_id, generation = parts[0], int(parts[1])
        if not hmac.compare_digest(parts[2], self._mac(session_id, generation)):
            raise SessionInvalid("forged refresh token")
        return session_id, generation

    async def start(self, user_id: str) -> str:
        session_id = uuid.uuid4().hex
        expires = int((self.clock() + self.ttl_seconds) * 1000)
        await self._store.create(session_id, user_id, expires)
        return self._token(session_id, 0)

    async def rotate(self, token: str) -> tuple[str, str]:
        """(user id, the next refresh token); SessionInvalid or SessionReused otherwise. Within
        the grace, the token rotated away last gets the same next token as its first use."""
        session_id, generation = self._parse(token)
        now_ms = int(self.clock() * 1000)
        user_id = await self._store.advance(session_id, generation, now_ms, self.grace_ms)
        return user_id, self._token(session_id, generation + 1)

    async def revoke(self, token: str) -> None:
        session_id, _ = self._parse(token)
        await self._store.revoke(session_id)
