"""Forced throwaway mode starts real Postgres and Redis servers, and removes them afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest
import redis.asyncio

from harness import ports
from tests import services

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def throwaway() -> Iterator[tuple[str, str]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(services.MODE_ENV, "throwaway")
        with services.postgres() as postgres_url, services.redis() as redis_url:
            yield postgres_url, redis_url


def test_forced_mode_does_not_use_the_standard_ports(throwaway: tuple[str, str]) -> None:
    postgres_url, redis_url = throwaway
    assert ":5432/" not in postgres_url
    assert ":6379/" not in redis_url


async def test_throwaway_postgres_answers_queries(throwaway: tuple[str, str]) -> None:
    conn = await asyncpg.connect(throwaway[0], timeout=10)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == "postgres"
    finally:
        await conn.close()


async def test_throwaway_redis_answers_ping(throwaway: tuple[str, str]) -> None:
    client = redis.asyncio.Redis.from_url(throwaway[1])
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


def test_throwaway_servers_stop_when_the_block_ends() -> None:
    with services.throwaway_postgres() as postgres_url, services.throwaway_redis() as redis_url:
        pg_port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
        redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        assert ports.port_open("127.0.0.1", pg_port)
        assert services.redis_answers("127.0.0.1", redis_port)
    assert not ports.port_open("127.0.0.1", pg_port)
    assert not ports.port_open("127.0.0.1", redis_port)
