"""The updates a node holds to log again (jacameno.collab.unlogged.Held), on a manual clock."""

from __future__ import annotations

import logging

import pytest

from eventstore import NewEvent
from jacameno.collab.unlogged import Held, Unlogged


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _write(size: int, user: str = "alice") -> Unlogged:
    return Unlogged(NewEvent("doc.updated", b"x" * size, {"user_id": user}), b"x" * size)


def test_held_updates_are_taken_once_in_order_and_marked_relogged() -> None:
    held = Held(seconds=10, max_bytes=100, clock=Clock())
    first, second = _write(1), _write(2, "bob")
    held.hold("p", [first])
    held.hold("p", [second])
    assert held.holds("p")
    assert not held.holds("q")
    assert held.take("p") == [first, second]
    assert held.take("p") == []
    assert not held.holds("p")
    event = second.relogged()
    assert event.metadata == {"user_id": "bob", "relogged": True}
    assert (event.type, event.data) == ("doc.updated", b"xx")


def test_updates_held_too_long_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    held = Held(seconds=10, max_bytes=100, clock=clock)
    held.hold("p", [_write(1)])
    clock.now += 10.5
    with caplog.at_level(logging.WARNING):
        assert not held.holds("p")
    assert held.take("p") == []
    dropped = [r for r in caplog.records if getattr(r, "action", "") == "collab.relog_dropped"]
    assert [r.__dict__["updates"] for r in dropped] == [1]


def test_a_retry_does_not_renew_the_deadline() -> None:
    clock = Clock()
    held = Held(seconds=10, max_bytes=100, clock=clock)
    held.hold("p", [_write(1)])
    clock.now += 6
    taken = held.take("p")  # a relog that failed again holds them again
    held.hold("p", taken)
    clock.now += 6
    assert not held.holds("p")


def test_at_most_a_documents_worth_is_held_the_oldest_dropped() -> None:
    held = Held(seconds=10, max_bytes=10, clock=Clock())
    oldest, middle, newest = _write(4), _write(4), _write(4)
    held.hold("p", [oldest, middle])
    held.hold("p", [newest])
    assert held.take("p") == [middle, newest]


def test_shutdown_drops_everything(caplog: pytest.LogCaptureFixture) -> None:
    held = Held(seconds=10, max_bytes=10, clock=Clock())
    held.hold("p", [_write(1), _write(1)])
    with caplog.at_level(logging.WARNING):
        held.drop_all()
    assert not held.holds("p")
    assert "the server shut down" in caplog.text
