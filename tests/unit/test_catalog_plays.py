"""The play-count rule, as a function of the plays and what was remembered before them."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

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


@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 90)), max_size=40),
    st.lists(st.integers(1, 40), max_size=5),
)
def test_any_split_of_the_plays_counts_the_same(
    raw: list[tuple[int, int, int]], cuts: list[int]
) -> None:
    # Plays of three tracks (one unpublished) by three listeners, minutes apart, out of order.
    plays = [
        play(n, NOON + m * MINUTE_MS, f"device:d{w}", f"t{t}") for n, (t, w, m) in enumerate(raw)
    ]
    live = {"t0", "t1"}
    whole = decide(plays, {}, live)
    remembered: dict[str, int] = {}
    tracks: dict[str, int] = {}
    bounds = sorted({0, len(plays), *(c for c in cuts if c < len(plays))})
    for start, end in itertools.pairwise(bounds):
        part = decide(plays[start:end], remembered, live)
        remembered.update(part.listens)
        for track, n in part.tracks.items():
            tracks[track] = tracks.get(track, 0) + n
    assert tracks == whole.tracks
    assert remembered == whole.listens
