"""The circuit in front of Redis: one warning when it opens, one info line when it closes, no
call while it waits for its retry time."""

from __future__ import annotations

import logging

import pytest

from jacameno.circuit import Circuit


def test_an_outage_is_logged_once_and_waits_for_the_retry_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    states: list[bool] = []
    circuit = Circuit("redis", 2, on_change=states.append, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="jacameno.circuit")
    assert circuit.should_try()
    circuit.failed(ConnectionError("refused"))
    circuit.failed(ConnectionError("refused"))
    assert circuit.up is False
    assert not circuit.should_try()
    now[0] += 2
    assert circuit.should_try()
    circuit.succeeded()
    circuit.succeeded()
    assert states[-1]  # up again (read from the callback: mypy keeps `circuit.up` False)
    assert states == [True, False, True]
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert actions == ["circuit.opened", "circuit.closed"]
    assert caplog.records[0].levelno == logging.WARNING
