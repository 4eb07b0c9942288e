"""Rate limits: fixed-window counters per key, in Redis when configured (shared by every node)
and in process otherwise, behind the `RateLimiter` Protocol. With Redis, `FallbackRateLimiter`
counts in process while Redis is unavailable, so that Redis is never a single point of failure
of the API (docs/operations.md, "Redis outage")."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from jacameno.circuit import Circuit


class LimiterUnavailable(Exception):
    """The limiter's backing service did not answer."""


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: float, cost: int = 1) -> float:
        """Count an attempt on `key` (as `cost` attempts: a request that does the work of
        several). Returns 0.0 while at most `limit` attempts fell in the current window of
        `window_seconds`, otherwise the seconds until the window ends (a refused attempt still
        counts)."""
        ...


class MemoryRateLimiter:
    """Windows in process, on `clock` (seconds, monotonic; tests pass their own)."""

    def __init__(
        self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._max_keys = max_keys
        self._clock = clock

    async def hit(self, key: str, limit: int, window_seconds: float, cost: int = 1) -> float:
        now = self._clock()
        ends, count = self._windows.get(key, (0.0, 0))
        if ends <= now:
            ends, count = now + window_seconds, 0
            if len(self._windows) >= self._max_keys:
                self._forget_expired(now)
        count += cost
        self._windows[key] = (ends, count)
        return 0.0 if count <= limit else ends - now

    def _forget_expired(self, now: float) -> None:
        for key in [k for k, (ends, _) in self._windows.items() if ends <= now]:
            del self._windows[key]


_HIT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str = "jacameno:") -> None:
        self._prefix = f"{prefix}rate:"
        self._hit = redis.register_script(_HIT)

    async def hit(self, key: str, limit: int, window_seconds: float, cost: int = 1) -> float:
        """As `RateLimiter.hit`; LimiterUnavailable when Redis does not answer in time."""
        window_ms = max(1, int(window_seconds * 1000))
        try:
            count, ttl_ms = await self._hit(keys=[self._prefix + key], args=[window_ms, cost])
        except (RedisError, OSError, TimeoutError) as exc:
            raise LimiterUnavailable(str(exc)) from exc
        return 0.0 if int(count) <= limit else max(int(ttl_ms), 1) / 1000


class FallbackRateLimiter:
    """The shared limiter while its service answers; this process's own counters while the
    circuit is open (so the limits hold per node meanwhile, not across nodes). Counts kept in
    process are not carried back to the shared limiter."""

    def __init__(
        self,
        shared: RedisRateLimiter,
        local: MemoryRateLimiter,
        circuit: Circuit,
        on_fallback: Callable[[], None] = lambda: None,
    ) -> None:
        self._shared = shared
        self._local = local
        self._circuit = circuit
        self._on_fallback = on_fallback

    async def hit(self, key: str, limit: int, window_seconds: float, cost: int = 1) -> float:
        if self._circuit.should_try():
            try:
                retry = await self._shared.hit(key, limit, window_seconds, cost)
            except LimiterUnavailable as exc:
                self._circuit.failed(exc.__cause__ or exc)
            else:
                self._circuit.succeeded()
                return retry
        self._on_fallback()
        return await self._local.hit(key, limit, window_seconds, cost)
