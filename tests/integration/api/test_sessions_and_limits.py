"""One conformance suite for each small backend Protocol, run against every implementation:
refresh sessions (database of each kind) and rate limiters (in-process, Redis, Redis with the
in-process fallback)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from harness.ports import free_port
from jacameno.auth.sessions import (
    DatabaseSessionStore,
    SessionInvalid,
    SessionReused,
    SessionStore,
)
from jacameno.circuit import Circuit
from jacameno.ratelimit import (
    FallbackRateLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from sqldb import open_database

GRACE_MS = 10_000


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionStore]:
    db = await open_database(database_url)
    yield DatabaseSessionStore(db)
    await db.close()


class _Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture(params=["memory", "redis", "fallback"])
def limiter(request: pytest.FixtureRequest, redis: Redis, clock: _Clock) -> RateLimiter:
    shared = RedisRateLimiter(redis, prefix=f"test-{uuid.uuid4().hex}:")
    if request.param == "redis":
        return shared
    if request.param == "fallback":
        return FallbackRateLimiter(shared, MemoryRateLimiter(), Circuit("redis", 1))
    return MemoryRateLimiter(clock=clock)


async def _wait_out(limiter: RateLimiter, clock: _Clock, seconds: float) -> None:
    """Let `seconds` pass for `limiter`: on its clock in process, for real in Redis."""
    if isinstance(limiter, MemoryRateLimiter):
        clock.now += seconds
    else:
        await asyncio.sleep(seconds)


def _ms(offset: float = 0.0) -> int:
    return int((time.time() + offset) * 1000)


async def test_a_session_advances_one_generation_at_a_time(sessions: SessionStore) -> None:
    await sessions.create("s1", "user-1", _ms(60))
    assert await sessions.advance("s1", 0, _ms(), GRACE_MS) == "user-1"
    assert await sessions.advance("s1", 1, _ms(), GRACE_MS) == "user-1"
    with pytest.raises(SessionInvalid):
        await sessions.advance("s1", 5, _ms(), GRACE_MS)


async def test_an_old_generation_revokes_the_session(sessions: SessionStore) -> None:
    await sessions.create("s2", "user-1", _ms(60))
    await sessions.advance("s2", 0, _ms(), 0)
    with pytest.raises(SessionReused):
        await sessions.advance("s2", 0, _ms(), 0)
    with pytest.raises(SessionInvalid):
        await sessions.advance("s2", 1, _ms(), 0)


async def test_the_token_rotated_away_last_is_honoured_within_the_grace(
    sessions: SessionStore,
) -> None:
    await sessions.create("g1", "user-1", _ms(60))
    await sessions.advance("g1", 0, _ms(), GRACE_MS)
    # The second tab: the same user, and the session stays at generation 1 (not advanced again).
    assert await sessions.advance("g1", 0, _ms(), GRACE_MS) == "user-1"
    assert await sessions.advance("g1", 1, _ms(), GRACE_MS) == "user-1"
    # Two generations back is a replay, grace or not.
    with pytest.raises(SessionReused):
        await sessions.advance("g1", 0, _ms(), GRACE_MS)
    with pytest.raises(SessionInvalid):
        await sessions.advance("g1", 2, _ms(), GRACE_MS)


async def test_after_the_grace_the_rotated_token_revokes_the_session(
    sessions: SessionStore,
) -> None:
    await sessions.create("g2", "user-1", _ms(60))
    await sessions.advance("g2", 0, _ms(), GRACE_MS)
    with pytest.raises(SessionReused):
        await sessions.advance("g2", 0, _ms(GRACE_MS / 1000 + 1), GRACE_MS)
    with pytest.raises(SessionInvalid):
        await sessions.advance("g2", 1, _ms(), GRACE_MS)


async def test_unknown_expired_and_revoked_sessions_are_invalid(sessions: SessionStore) -> None:
    with pytest.raises(SessionInvalid):
        await sessions.advance("nope", 0, _ms(), GRACE_MS)
    await sessions.create("s3", "user-1", _ms(60))
    with pytest.raises(SessionInvalid):
        await sessions.advance("s3", 0, _ms(120), GRACE_MS)
    await sessions.revoke("s3")
    await sessions.revoke("never-existed")
    with pytest.raises(SessionInvalid):
        await sessions.advance("s3", 0, _ms(), GRACE_MS)
    await sessions.create("s5", "user-1", _ms(60))
    await sessions.advance("s5", 0, _ms(), GRACE_MS)
    await sessions.revoke("s5")
    with pytest.raises(SessionInvalid):
        await sessions.advance("s5", 0, _ms(), GRACE_MS)


async def test_of_concurrent_rotations_without_grace_at_most_one_wins(
    sessions: SessionStore,
) -> None:
    await sessions.create("s4", "user-1", _ms(60))
    results = await asyncio.gather(
        *(sessions.advance("s4", 0, _ms(), 0) for _ in range(5)), return_exceptions=True
    )
    assert sum(r == "user-1" for r in results) == 1
    assert all(isinstance(r, SessionInvalid) for r in results if r != "user-1")


async def test_concurrent_rotations_within_the_grace_advance_once(sessions: SessionStore) -> None:
    await sessions.create("s6", "user-1", _ms(60))
    results = await asyncio.gather(*(sessions.advance("s6", 0, _ms(), GRACE_MS) for _ in range(5)))
    assert results == ["user-1"] * 5
    assert await sessions.advance("s6", 1, _ms(), GRACE_MS) == "user-1"


async def test_a_limiter_allows_the_limit_then_says_how_long_to_wait(
    limiter: RateLimiter,
) -> None:
    assert [await limiter.hit("k", 3, 30) for _ in range(3)] == [0.0, 0.0, 0.0]
    retry = await limiter.hit("k", 3, 30)
    assert 0 < retry <= 30
    assert await limiter.hit("other", 3, 30) == 0.0


async def test_a_limiter_counts_a_costly_attempt_as_several(limiter: RateLimiter) -> None:
    assert await limiter.hit("c", 5, 30, cost=4) == 0.0
    assert await limiter.hit("c", 5, 30) == 0.0
    assert await limiter.hit("c", 5, 30, cost=2) > 0  # 7 of 5
    assert await limiter.hit("d", 5, 30, cost=6) > 0  # alone over the limit


async def test_a_limiter_window_ends(limiter: RateLimiter, clock: _Clock) -> None:
    assert await limiter.hit("w", 1, 0.2) == 0.0
    retry = await limiter.hit("w", 1, 0.2)
    assert 0 < retry <= 0.2
    await _wait_out(limiter, clock, retry + 0.05)  # the window's end is the behaviour under test
    assert await limiter.hit("w", 1, 0.2) == 0.0


async def test_the_fallback_limiter_counts_in_process_while_redis_is_unreachable() -> None:
    # No retries: redis-py's default backs off for seconds before it says what the test needs.
    down = Redis(
        port=free_port(),
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    now = [0.0]
    changes: list[bool] = []
    circuit = Circuit("redis", 2, on_change=changes.append, clock=lambda: now[0])
    fallbacks: list[None] = []
    limiter = FallbackRateLimiter(
        RedisRateLimiter(down), MemoryRateLimiter(), circuit, lambda: fallbacks.append(None)
    )
    try:
        assert [await limiter.hit("k", 2, 30) for _ in range(2)] == [0.0, 0.0]
        assert await limiter.hit("k", 2, 30) > 0
        assert changes == [True, False]
        assert len(fallbacks) == 3
        assert not circuit.should_try()  # no call to Redis until the retry time
        now[0] = 2.0
        assert circuit.should_try()
    finally:
        await down.aclose()
