"""Session-wide services: the Postgres and Redis every test that asks for them shares.

Resolution (environment, standard local ports, throwaway servers) lives in tests/services.py; a
missing service is an error, never a skip. Also fresh, migrated databases of each kind (made by
harness/databases.py). And the Hypothesis profiles (tests/hypothesis_profiles.py).
"""

from __future__ import annotations

import ast
import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness.databases import drop_database, migrated_sqlite, migrated_template, postgres_database
from harness.pgreuse import DatabasePool
from harness.s3 import S3Server, s3_server
from tests import hypothesis_profiles, services

hypothesis_profiles.register()


def _serialize_ast_parsing() -> None:
    """One thread at a time in `ast.parse`. CPython 3.11 keeps the AST constructor's recursion
    counter per interpreter, not per thread, so two threads parsing at once (pytest formatting a
    failure while a server thread logs a traceback, whose carets 3.11 finds by parsing the line)
    fail with "SystemError: AST constructor recursion depth mismatch", and pytest then stops with
    an INTERNALERROR that names no test (a CI run did, hiding a real failure)."""
    parse = ast.parse
    lock = threading.RLock()

    @functools.wraps(parse)
    def serialized(*args: object, **kwargs: object) -> object:
        with lock:
            return parse(*args, **kwargs)  # type: ignore[call-overload]

    ast.parse = serialized  # type: ignore[assignment]


_serialize_ast_parsing()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """DSN of an admin connection to database `postgres`, for the whole test session."""
    with services.postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis for the whole test session."""
    with services.redis() as url:
        yield url


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-compatible server (moto's) on a free port, for the whole test session; each test
    makes its own bucket."""
    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


@pytest.fixture(scope="session")
def pg_template(postgres_url: str) -> Iterator[str]:
    """Name of a migrated template database, made once per test session."""
    name = asyncio.run(migrated_template(postgres_url))
    yield name
    asyncio.run(drop_database(postgres_url, name))


@pytest.fixture(scope="session")
def pg_pool(postgres_url: str, pg_template: str) -> Iterator[DatabasePool]:
    """Clones of the template that tests hand on to each other, reset in between (cloning and
    dropping a database for each test cost most of a second; see harness/pgreuse.py)."""
    pool = DatabasePool(postgres_url, pg_template)
    yield pool
    asyncio.run(pool.close())


@pytest.fixture
async def fresh_pg_url(pg_pool: DatabasePool) -> AsyncIterator[str]:
    """URL of a fresh, migrated Postgres database (a new clone of the template, or one another
    test used, reset to the template's state and renamed); reset or dropped after the test."""
    url = await pg_pool.take()
    try:
        yield url
    finally:
        await pg_pool.give_back(url)


@pytest.fixture
async def empty_pg_url(postgres_url: str) -> AsyncIterator[str]:
    """URL of a new, empty (unmigrated) Postgres database, dropped after the test."""
    async with postgres_database(postgres_url) as url:
        yield url


@pytest.fixture
def fresh_sqlite_path(tmp_path: Path) -> Path:
    """Path of a fresh, migrated SQLite database file."""
    return migrated_sqlite(tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh migrated database of each SQL kind, as a URL."""
    if request.param == "sqlite":
        return f"sqlite:///{migrated_sqlite(tmp_path)}"
    url: str = request.getfixturevalue("fresh_pg_url")
    return url
