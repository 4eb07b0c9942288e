"""One conformance suite for each small backend Protocol, run against every implementation:
refresh sessions (database of each kind, Redis) and rate limiters (in-process, Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from jacameno.auth.sessions import (
    DatabaseSessionStore,
    RedisSessionStore,
    SessionInvalid,
    SessionReused,
    SessionStore,
)
from jacameno.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from projections.sql import open_database


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["database", "redis"])
async def sessions(
    request: pytest.FixtureRequest, database_url: str, redis: Redis
) -> AsyncIterator[SessionStore]:
    if request.param == "redis":
        yield RedisSessionStore(redis, prefix=f"test-{uuid.uuid4().hex}:")
        return
    db = await open_database(database_url)
    yield DatabaseSessionStore(db)
    await db.close()


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest, redis: Redis) -> RateLimiter:
    if request.param == "redis":
        return RedisRateLimiter(redis, prefix=f"test-{uuid.uuid4().hex}:")
    return MemoryRateLimiter()


def _ms(offset: float = 0.0) -> int:
    return int((time.time() + offset) * 1000)


async def test_a_session_advances_one_generation_at_a_time(sessions: SessionStore) -> None:
    await sessions.create("s1", "user-1", _ms(60))
    assert await sessions.advance("s1", 0, _ms()) == "user-1"
    assert await sessions.advance("s1", 1, _ms()) == "user-1"
    with pytest.raises(SessionInvalid):
        await sessions.advance("s1", 5, _ms())


async def test_an_old_generation_revokes_the_session(sessions: SessionStore) -> None:
    await sessions.create("s2", "user-1", _ms(60))
    await sessions.advance("s2", 0, _ms())
    with pytest.raises(SessionReused):
        await sessions.advance("s2", 0, _ms())
    with pytest.raises(SessionInvalid):
        await sessions.advance("s2", 1, _ms())


async def test_unknown_expired_and_revoked_sessions_are_invalid(sessions: SessionStore) -> None:
    with pytest.raises(SessionInvalid):
        await sessions.advance("nope", 0, _ms())
    await sessions.create("s3", "user-1", _ms(60))
    with pytest.raises(SessionInvalid):
        await sessions.advance("s3", 0, _ms(120))
    await sessions.revoke("s3")
    await sessions.revoke("never-existed")
    with pytest.raises(SessionInvalid):
        await sessions.advance("s3", 0, _ms())


async def test_of_two_concurrent_rotations_at_most_one_wins(sessions: SessionStore) -> None:
    await sessions.create("s4", "user-1", _ms(60))
    results = await asyncio.gather(
        *(sessions.advance("s4", 0, _ms()) for _ in range(5)), return_exceptions=True
    )
    assert sum(r == "user-1" for r in results) == 1
    assert all(isinstance(r, SessionInvalid) for r in results if r != "user-1")


async def test_a_limiter_allows_the_limit_then_says_how_long_to_wait(
    limiter: RateLimiter,
) -> None:
    assert [await limiter.hit("k", 3, 30) for _ in range(3)] == [0.0, 0.0, 0.0]
    retry = await limiter.hit("k", 3, 30)
    assert 0 < retry <= 30
    assert await limiter.hit("other", 3, 30) == 0.0


async def test_a_limiter_window_ends(limiter: RateLimiter) -> None:
    assert await limiter.hit("w", 1, 0.2) == 0.0
    retry = await limiter.hit("w", 1, 0.2)
    assert 0 < retry <= 0.2
    await asyncio.sleep(retry + 0.05)  # waiting out the window is the behaviour under test
    assert await limiter.hit("w", 1, 0.2) == 0.0
