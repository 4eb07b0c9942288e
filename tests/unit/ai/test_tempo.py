"""Tempo, beats and downbeats on patterns whose answers the test made: clicks and drum
patterns from 60 to 200 BPM, with swing and with a tempo change (docs/ai.md, "Proof")."""

from __future__ import annotations

import pytest

from jacameno.ai import onsets, scores, tempo, testsignals

MAX_BPM_ERROR = 0.2
MIN_F_MEASURE = 0.98

# (pattern, bpm, swing): fourteen tempos across 60-200 BPM, clicks and kick/hat grooves
STEADY = [
    ("clicks", 60.0, 0.5),
    ("drums", 64.0, 0.5),
    ("clicks", 72.0, 0.5),
    ("drums", 85.0, 0.5),
    ("clicks", 97.0, 0.5),
    ("drums", 104.5, 0.5),
    ("clicks", 110.0, 0.5),
    ("drums", 123.0, 0.5),
    ("clicks", 136.0, 0.5),
    ("drums", 150.0, 0.5),
    ("clicks", 163.0, 0.5),
    ("drums", 177.0, 0.5),
    ("clicks", 190.0, 0.5),
    ("drums", 200.0, 0.5),
    ("drums", 96.0, 2.0 / 3.0),  # triplet swing
    ("drums", 140.0, 0.6),  # light swing
]


def _pattern(kind: str, bpm: float, swing: float) -> testsignals.Rhythmic:
    if kind == "clicks":
        return testsignals.clicks(bpm, 12.0)
    return testsignals.drums(bpm, 12.0, swing=swing, seed=int(bpm))


@pytest.mark.parametrize(("kind", "bpm", "swing"), STEADY)
def test_steady_tempo_beats_and_downbeats_are_found(kind: str, bpm: float, swing: float) -> None:
    pattern = _pattern(kind, bpm, swing)
    found = tempo.rhythm(onsets.envelope(pattern.samples, pattern.sample_rate))
    assert not scores.octave_error(found.bpm, bpm)
    assert abs(found.bpm - bpm) <= MAX_BPM_ERROR
    assert scores.beat_f_measure(found.beats, pattern.beats.tolist()) >= MIN_F_MEASURE
    assert found.beats_per_bar == 4
    assert scores.beat_f_measure(found.downbeats, pattern.downbeats.tolist()) >= MIN_F_MEASURE
    assert found.confidence > 0.8
    # the octave alternatives around the answer: half, the tempo itself, double
    assert any(abs(b - bpm) < 1.0 and strength > 0.5 for b, strength in found.candidates)
    assert any(abs(b - bpm / 2) < 1.0 for b, _ in found.candidates)


@pytest.mark.parametrize(
    ("kind", "before", "after"), [("clicks", 90.0, 120.0), ("drums", 100.0, 80.0)]
)
def test_a_tempo_change_gives_two_segments_each_at_its_tempo(
    kind: str, before: float, after: float
) -> None:
    maker = testsignals.clicks if kind == "clicks" else testsignals.drums
    pattern = maker(before, 14.0, change=(6.0, after))
    found = tempo.rhythm(onsets.envelope(pattern.samples, pattern.sample_rate))
    assert [round(s.bpm, 0) for s in found.segments] == [before, after]
    for segment, bpm in zip(found.segments, (before, after), strict=True):
        assert abs(segment.bpm - bpm) <= MAX_BPM_ERROR
    change = pattern.beats[pattern.beats >= 6.0][0]
    assert abs(found.segments[1].start - change) <= 60.0 / before  # within a beat of the change
    assert scores.beat_f_measure(found.beats, pattern.beats.tolist()) >= MIN_F_MEASURE


def test_octave_errors_are_counted_and_there_are_none() -> None:
    """The tempo is the pulse the pattern plays, not its double or half: an even click is
    counted at its own rate (60 and 200 BPM are both clicks), a kick under hi-hats on the
    eighths at the kick's."""
    errors = []
    for kind, bpm, swing in STEADY[::3]:
        pattern = _pattern(kind, bpm, swing)
        found = tempo.rhythm(onsets.envelope(pattern.samples, pattern.sample_rate))
        if scores.octave_error(found.bpm, bpm):
            errors.append((kind, bpm, found.bpm))
    assert errors == []


def test_silence_and_very_short_audio_have_no_tempo() -> None:
    silent = testsignals.clicks(120.0, 12.0).samples * 0.0
    assert tempo.rhythm(onsets.envelope(silent, 22_050)).bpm == 0.0
    short = testsignals.clicks(120.0, 2.0).samples
    found = tempo.rhythm(onsets.envelope(short, 22_050))
    assert found.bpm == 0.0
    assert found.beats == []


def test_the_beat_f_measure_scores_misses_and_extras() -> None:
    truth = [1.0, 2.0, 3.0, 4.0]
    assert scores.beat_f_measure(truth, truth) == 1.0
    assert scores.beat_f_measure([1.05, 2.06, 2.95, 4.0], truth) == 1.0
    assert scores.beat_f_measure([1.1, 2.0, 3.0, 4.0], truth) == pytest.approx(0.75)
    assert scores.beat_f_measure([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5], truth) == pytest.approx(
        2 * 0.5 * 1.0 / 1.5
    )
    assert scores.beat_f_measure([], truth) == 0.0
