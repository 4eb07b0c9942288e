"""Refresh-token sessions: rotating refresh tokens grouped in families (one per login).

A refresh token is `{session_id}.{generation}.{mac}`, the MAC an HMAC of the first two parts with
a key derived from the signing secret, so stores hold no token. Each refresh advances the session
to the next generation and hands out its token; presenting a token of an earlier generation (one
already used: stolen, or replayed) revokes the whole family. Sessions live in Redis when it is
configured and in the database otherwise, behind the `SessionStore` Protocol."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Protocol

from redis.asyncio import Redis

from projections.sql import Database


class SessionInvalid(Exception):
    """The refresh token is malformed, forged, unknown, expired or revoked."""


class SessionReused(SessionInvalid):
    """A refresh token was presented after it had been rotated; its family is now revoked."""


class SessionStore(Protocol):
    async def create(self, session_id: str, user_id: str, expires_at_ms: int) -> None:
        """Record a new session at generation 0."""
        ...

    async def advance(self, session_id: str, generation: int, now_ms: int) -> str:
        """Atomically move the session from `generation` to the next one; return its user id.
        Unknown, expired or revoked sessions raise SessionInvalid; an earlier generation revokes
        the session and raises SessionReused. Of two concurrent calls, at most one succeeds."""
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
                " (id, user_id, generation, revoked, created_at, expires_at)"
                " VALUES ($1, $2, 0, 0, $3, $4)",
                session_id,
                user_id,
                now,
                expires_at_ms,
            )

    async def advance(self, session_id: str, generation: int, now_ms: int) -> str:
        lock = " FOR UPDATE" if self._db.kind == "postgres" else ""
        async with self._db.transaction() as conn:
            row = await conn.fetchrow(
                "SELECT user_id, generation, revoked, expires_at FROM refresh_sessions"
                f" WHERE id = $1{lock}",
                session_id,
            )
            if row is None or row["revoked"] or row["expires_at"] <= now_ms:
                raise SessionInvalid("unknown, expired or revoked session")
            if generation < row["generation"]:
                await conn.execute(
                    "UPDATE refresh_sessions SET revoked = 1 WHERE id = $1", session_id
                )
            elif generation == row["generation"]:
                await conn.execute(
                    "UPDATE refresh_sessions SET generation = generation + 1 WHERE id = $1",
                    session_id,
                )
                return str(row["user_id"])
            else:
                raise SessionInvalid("unknown generation")
        raise SessionReused("refresh token reused; session revoked")

    async def revoke(self, session_id: str) -> None:
        await self._db.execute("UPDATE refresh_sessions SET revoked = 1 WHERE id = $1", session_id)


_ADVANCE = """
local s = redis.call('HMGET', KEYS[1], 'user', 'gen', 'revoked', 'expires')
if not s[1] or s[3] == '1' or tonumber(s[4]) <= tonumber(ARGV[2]) then return {0, ''} end
local gen = tonumber(s[2])
local want = tonumber(ARGV[1])
if want == gen then
  redis.call('HSET', KEYS[1], 'gen', gen + 1)
  return {1, s[1]}
end
if want < gen then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {2, ''}
end
return {0, ''}
"""


class RedisSessionStore:
    """One hash per session, expiring with it; rotation is one Lua script (atomic)."""

    def __init__(self, redis: Redis, prefix: str = "jacameno:") -> None:
        self._redis = redis
        self._prefix = f"{prefix}session:"
        self._advance = redis.register_script(_ADVANCE)

    async def create(self, session_id: str, user_id: str, expires_at_ms: int) -> None:
        key = self._prefix + session_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={"user": user_id, "gen": 0, "revoked": 0, "expires": expires_at_ms},
            )
            pipe.pexpireat(key, expires_at_ms)
            await pipe.execute()

    async def advance(self, session_id: str, generation: int, now_ms: int) -> str:
        outcome, user = await self._advance(
            keys=[self._prefix + session_id], args=[generation, now_ms]
        )
        if outcome == 1:
            return user.decode() if isinstance(user, bytes) else str(user)
        if outcome == 2:
            raise SessionReused("refresh token reused; session revoked")
        raise SessionInvalid("unknown, expired or revoked session")

    async def revoke(self, session_id: str) -> None:
        key = self._prefix + session_id
        # Only an existing session is marked, so that no key without an expiry is created.
        await self._redis.eval(
            "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'revoked', '1')"
            " end return 0",
            1,
            key,
        )


class RefreshTokens:
    """Mints, checks and rotates refresh tokens over a SessionStore."""

    def __init__(self, store: SessionStore, secret: str, ttl_seconds: int) -> None:
        self._store = store
        self._key = hmac.new(secret.encode(), b"jacameno refresh tokens", hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds

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
        expires = int((time.time() + self.ttl_seconds) * 1000)
        await self._store.create(session_id, user_id, expires)
        return self._token(session_id, 0)

    async def rotate(self, token: str) -> tuple[str, str]:
        """(user id, the next refresh token); SessionInvalid or SessionReused otherwise."""
        session_id, generation = self._parse(token)
        user_id = await self._store.advance(session_id, generation, int(time.time() * 1000))
        return user_id, self._token(session_id, generation + 1)

    async def revoke(self, token: str) -> None:
        session_id, _ = self._parse(token)
        await self._store.revoke(session_id)

    async def revoke_session(self, session_id: str) -> None:
        await self._store.revoke(session_id)
