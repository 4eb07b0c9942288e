"""The Postgres writer's connection: one that does not close cleanly is terminated and logged,
not dropped silently (no server needed: the connection is a stand-in)."""

from __future__ import annotations

from typing import Any

import pytest

from eventstore.pgwriter import PostgresWriter


class _Unclosable:
    def __init__(self) -> None:
        self.terminated = False

    def is_closed(self) -> bool:
        return self.terminated

    async def close(self) -> None:
        raise ConnectionResetError("the server went away")

    def terminate(self) -> None:
        self.terminated = True


def _unreachable() -> Any:
    raise AssertionError("closing needs no pool")


async def test_a_connection_that_does_not_close_is_terminated_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = PostgresWriter(
        "postgresql://unused", _unreachable, lambda _: None, connect_timeout=1, command_timeout=1
    )
    conn = _Unclosable()
    writer.connection = conn  # type: ignore[assignment]
    await writer.close()
    assert conn.terminated
    failed = [r for r in caplog.records if getattr(r, "action", "") == "append.close_failed"]
    assert len(failed) == 1
    assert "server went away" in failed[0].__dict__["error"]
    assert writer.connection is None
