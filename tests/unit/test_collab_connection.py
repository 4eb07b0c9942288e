"""The send loop tells a client that left from a failure of its own (collab.connection)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.websockets import WebSocket, WebSocketDisconnected

from jacameno.collab.connection import Connection
from tests.integration.collab.support import eventually


class _Socket:
    """What the send loop uses of a WebSocket, with a send that fails as told."""

    def __init__(self, failure: BaseException) -> None:
        self.scope: dict[str, Any] = {}  # no frames extension: sends go through ASGI
        self.failure = failure

    async def send_bytes(self, data: bytes) -> None:
        raise self.failure


async def _send_one(failure: BaseException) -> Connection:
    socket: Any = _Socket(failure)
    websocket: WebSocket = socket
    connection = Connection(websocket, max_messages=8, max_bytes=1024, close_timeout=1)
    connection.send(b"\x00")
    await eventually(lambda: connection.close_code is not None)
    return connection


@pytest.mark.parametrize(
    "failure",
    [WebSocketDisconnected("closed"), ConnectionResetError("reset")],
    ids=["starlette", "transport"],
)
async def test_a_client_that_left_ends_the_socket_without_a_log_line(
    failure: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    connection = await _send_one(failure)
    assert connection.close_code == 1006
    assert [r for r in caplog.records if getattr(r, "action", "") == "collab.send_failed"] == []


async def test_any_other_send_failure_ends_the_socket_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connection = await _send_one(RuntimeError("a bug in the send loop"))
    assert connection.close_code == 1006
    failed = [r for r in caplog.records if getattr(r, "action", "") == "collab.send_failed"]
    assert [(r.levelname, r.exc_info is not None) for r in failed] == [("ERROR", True)]
