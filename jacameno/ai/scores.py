"""How estimates are scored against known answers, as MIREX scores them: the beat F-measure
and the weighted key score. Used by the tests and the benchmark alike."""

from __future__ import annotations

from collections.abc import Sequence

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def beat_f_measure(
    estimated: Sequence[float], truth: Sequence[float], window: float = 0.07
) -> float:
    """F-measure of beat times: an estimate is a hit when within `window` seconds of a true beat
    not already matched (each matched at most once, nearest first)."""
    if not estimated or not truth:
        return 0.0
    remaining = sorted(estimated)
    hits = 0
    for beat in truth:
        nearest = min(range(len(remaining)), key=lambda i: abs(remaining[i] - beat), default=None)
        if nearest is not None and abs(remaining[nearest] - beat) <= window:
            hits += 1
            remaining.pop(nearest)
    precision, recall = hits / len(estimated), hits / len(truth)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def octave_error(estimated: float, truth: float, tolerance: float = 0.04) -> bool:
    """Whether a tempo is off by a factor of 2, 3, 1/2 or 1/3 (within `tolerance`, relative)."""
    return any(
        abs(estimated - truth * factor) <= tolerance * truth * factor
        for factor in (2.0, 3.0, 0.5, 1.0 / 3.0)
    )


def key_score(estimated: str, truth: str) -> float:
    """MIREX's weighted key score of names like "Eb minor": 1 for the key, 0.5 a fifth away in
    the same mode, 0.3 the relative key, 0.2 the parallel key, else 0."""
    if estimated == truth:
        return 1.0
    e_pc, e_mode = estimated.split()
    t_pc, t_mode = truth.split()
    step = (PITCH_CLASSES.index(e_pc) - PITCH_CLASSES.index(t_pc)) % 12
    if e_mode == t_mode:
        return 0.5 if step in (5, 7) else 0.0
    if (t_mode == "major" and step == 9) or (t_mode == "minor" and step == 3):
        return 0.3
    return 0.2 if step == 0 else 0.0
