"""Session-wide services: the Postgres and Redis every test that asks for them shares.

Resolution (environment, standard local ports, throwaway servers) lives in tests/services.py; a
missing service is an error, never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import services


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
