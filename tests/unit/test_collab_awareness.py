"""The awareness table's bounds: state and room sizes, client ids owned by the socket that
introduced them, and the clocks of removed clients forgotten in bounded time and number."""

from __future__ import annotations

from jacameno.collab.awareness import AwarenessStates, Entry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _states(clock: Clock | None = None, **limits: int) -> AwarenessStates:
    bounds = {"max_state_bytes": 1000, "max_total_bytes": 10_000, "max_removed": 100, **limits}
    return AwarenessStates(
        max_state_bytes=bounds["max_state_bytes"],
        max_total_bytes=bounds["max_total_bytes"],
        removed_ttl=30.0,
        max_removed=bounds["max_removed"],
        clock=clock or Clock(),
    )


def test_a_state_over_its_bound_is_dropped() -> None:
    states = _states()
    assert states.apply([Entry(1, 1, '"' + "x" * 998 + '"')], "a").present == [1]
    applied = states.apply([Entry(2, 1, '"' + "x" * 999 + '"'), Entry(3, 1, "{}")], "a")
    assert (applied.present, applied.dropped) == ([3], 1)
    assert len(states) == 2


def test_states_beyond_the_room_total_are_dropped_and_what_is_kept_stays_under_it() -> None:
    states = _states(max_total_bytes=2500)
    big = '"' + "x" * 998 + '"'
    for client in range(5):
        applied = states.apply([Entry(client, 1, big)], f"peer{client}")
        assert applied.dropped == (0 if client < 2 else 1)
    assert len(states) == 2
    assert states.total_bytes == 2000
    encoded = states.encoded()
    assert encoded is not None
    assert len(encoded) < 2500
    # A client that shrinks or leaves makes room again.
    states.apply([Entry(0, 2, "null")], "peer0")
    assert states.apply([Entry(3, 2, big)], "peer3").present == [3]


def test_only_the_socket_that_introduced_a_client_may_set_or_remove_it() -> None:
    states = _states()
    states.apply([Entry(7, 1, '{"name":"alice"}')], "alice")
    hijack = states.apply([Entry(7, 50, '{"name":"mallory"}'), Entry(8, 1, "{}")], "mallory")
    assert (hijack.present, hijack.dropped) == ([8], 1)
    assert states.apply([Entry(7, 51, "null")], "mallory").removed == []
    assert len(states) == 2
    # Another node's entries (no owner) are not checked here: that node checked them. The ids
    # it introduces are its own until it relays their removal.
    assert states.apply([Entry(7, 2, '{"name":"alice"}')]).present == [7]
    assert states.apply([Entry(9, 1, '{"name":"remote"}')]).present == [9]
    assert states.apply([Entry(9, 5, '{"name":"mallory"}')], "mallory").dropped == 1
    assert states.apply([Entry(9, 2, "null")]).removed == [9]
    assert states.apply([Entry(9, 5, '{"name":"mallory"}')], "mallory").present == [9]
    # Once alice's socket removes it, the id is free again.
    assert states.apply([Entry(7, 3, "null")], "alice").removed == [7]
    assert states.apply([Entry(7, 4, "{}")], "mallory").present == [7]


def test_removed_clients_are_forgotten_so_memory_stays_bounded() -> None:
    clock = Clock()
    states = _states(clock, max_removed=100)
    for client in range(20_000):
        states.apply([Entry(client, 1, "{}")], "churner")
        states.apply([Entry(client, 2, "null")], "churner")
        assert states.remembered <= 101
    assert len(states) == 0
    # Removing clients the room never saw costs nothing.
    states.apply([Entry(c, 9, "null") for c in range(30_000, 40_000)], "churner")
    assert states.remembered <= 101


def test_a_returning_client_is_accepted_newer_at_once_and_with_any_clock_after_the_ttl() -> None:
    clock = Clock()
    states = _states(clock)
    states.apply([Entry(5, 10, "{}")], "first")
    assert states.remove([5]) is not None  # its socket left: clock 11, "null"
    assert states.apply([Entry(5, 10, '{"back":1}')], "second").present == []  # stale
    assert states.apply([Entry(5, 12, '{"back":1}')], "second").present == [5]
    states.remove([5])
    clock.now += 31.0
    assert states.apply([Entry(5, 1, '{"back":2}')], "third").present == [5]
