"""The play-count rule, as a function of the plays and what was remembered before them."""

from projections.catalog_plays import (
    DAY_MS,
    MINUTE_MS,
    PLAY_WINDOW_MS,
    Play,
    decide,
    trending_since,
)

NOON = 20_000 * DAY_MS + 12 * 60 * MINUTE_MS


def play(n: int, at: int, listener: str = "device:d1", track: str = "t1") -> Play:
    return Play(n, track, listener, at)


def test_a_listener_counts_again_only_thirty_minutes_after_their_counted_play() -> None:
    plays = [play(1, NOON), play(2, NOON + PLAY_WINDOW_MS - 1), play(3, NOON + PLAY_WINDOW_MS)]
    counted = decide(plays, {}, {"t1"})
    assert counted.tracks == {"t1": 2}
    assert counted.listens == {"t1 device:d1": NOON + PLAY_WINDOW_MS}


def test_what_was_remembered_decides_the_first_play() -> None:
    remembered = {"t1 device:d1": NOON - MINUTE_MS}
    assert decide([play(1, NOON)], remembered, {"t1"}).total == 0
    assert decide([play(1, NOON, "device:d2")], remembered, {"t1"}).total == 1


def test_a_play_recorded_before_the_counted_one_does_not_count() -> None:
    # Clocks of two nodes disagree: the later position carries the earlier time.
    assert decide([play(1, NOON), play(2, NOON - 5 * MINUTE_MS)], {}, {"t1"}).total == 1


def test_plays_of_tracks_not_published_are_not_counted() -> None:
    counted = decide([play(1, NOON, track="gone"), play(2, NOON)], {}, {"t1"})
    assert counted.tracks == {"t1": 1}
    assert counted.days == {("t1", NOON - NOON % DAY_MS): 1}


def test_the_trending_window_is_seven_utc_days() -> None:
    midnight = NOON - NOON % DAY_MS
    assert trending_since(NOON) == midnight - 6 * DAY_MS
    assert trending_since(midnight) == midnight - 6 * DAY_MS
