"""Known-answer signals, made here rather than downloaded: click and drum patterns with their
beat times, chord progressions in a known key, EBU-style tones, and mixes with inter-sample
peaks. Shared by the tests (tests/unit/ai) and the benchmark (load/bench_ai.py); deterministic
for a given seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

Array = npt.NDArray[np.float64]
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True, slots=True)
class Rhythmic:
    """A mono pattern and its answers: beat and downbeat times in seconds."""

    samples: Array
    sample_rate: int
    beats: Array
    downbeats: Array


def beat_times(
    bpm: float, seconds: float, *, start: float = 0.1, change: tuple[float, float] | None = None
) -> Array:
    """Beat times from `start` until `seconds` minus half a second; `change` = (at, new_bpm)
    switches the tempo at the first beat at or after `at` seconds."""
    times, t, current = [], start, bpm
    while t < seconds - 0.5:
        times.append(t)
        if change is not None and t >= change[0]:
            current = change[1]
        t += 60.0 / current
    return np.array(times)


def _place(out: Array, sound: Array, at: float, rate: int) -> None:
    index = round(at * rate)
    end = min(out.shape[0], index + sound.shape[0])
    out[index:end] += sound[: end - index]


def _click(rate: int, pitch: float, gain: float) -> Array:
    t = np.arange(int(0.03 * rate)) / rate
    return gain * np.sin(2 * np.pi * pitch * t) * np.exp(-t / 0.004)


def _kick(rate: int, gain: float) -> Array:
    t = np.arange(int(0.25 * rate)) / rate
    phase = 2 * np.pi * (45.0 * t + (110.0 / 30.0) * (1 - np.exp(-30.0 * t)))
    return np.asarray(gain * np.sin(phase) * np.exp(-t / 0.09), dtype=np.float64)


def _hat(rate: int, gain: float, rng: np.random.Generator) -> Array:
    t = np.arange(int(0.04 * rate)) / rate
    noise = np.diff(rng.standard_normal(t.shape[0] + 1))  # differenced: bright
    return np.asarray(gain * 0.3 * noise * np.exp(-t / 0.01), dtype=np.float64)


def clicks(
    bpm: float,
    seconds: float = 12.0,
    rate: int = 22_050,
    *,
    change: tuple[float, float] | None = None,
    beats_per_bar: int = 4,
) -> Rhythmic:
    """A metronome: a 1.5 kHz click on the downbeat (louder), 1 kHz on the other beats."""
    beats = beat_times(bpm, seconds, change=change)
    out = np.zeros(int(seconds * rate))
    for i, at in enumerate(beats):
        down = i % beats_per_bar == 0
        _place(out, _click(rate, 1500.0 if down else 1000.0, 0.8 if down else 0.5), at, rate)
    return Rhythmic(out, rate, beats, beats[::beats_per_bar])


def drums(
    bpm: float,
    seconds: float = 12.0,
    rate: int = 22_050,
    *,
    swing: float = 0.5,
    change: tuple[float, float] | None = None,
    seed: int = 0,
) -> Rhythmic:
    """Kick on every beat (louder on the downbeat of each 4/4 bar), hi-hats on the eighths, the
    off-beat one at `swing` of the beat (0.5 straight, 2/3 a triplet swing)."""
    rng = np.random.default_rng(seed)
    beats = beat_times(bpm, seconds, change=change)
    out = np.zeros(int(seconds * rate))
    for i, at in enumerate(beats):
        _place(out, _kick(rate, 0.9 if i % 4 == 0 else 0.6), at, rate)
        _place(out, _hat(rate, 0.5, rng), at, rate)
        following = beats[i + 1] if i + 1 < beats.shape[0] else at + 60.0 / bpm
        _place(out, _hat(rate, 0.35, rng), at + swing * (following - at), rate)
    return Rhythmic(out, rate, beats, beats[::4])


# Progressions as (scale degree in semitones from the tonic, chord quality) per chord; every one
# ends on a perfect or plagal-then-perfect cadence.
_MAJOR_PROGRESSIONS = (
    ((0, "maj"), (5, "maj"), (7, "dom7"), (0, "maj")),
    ((0, "maj7"), (9, "min7"), (2, "min7"), (7, "dom7"), (0, "maj")),
    ((0, "maj"), (4, "min"), (5, "maj"), (7, "maj"), (0, "maj")),
)
_MINOR_PROGRESSIONS = (
    ((0, "min"), (5, "min"), (7, "dom7"), (0, "min")),
    ((0, "min7"), (8, "maj7"), (2, "dim"), (7, "dom7"), (0, "min")),
    ((0, "min"), (3, "maj"), (5, "min"), (7, "maj"), (0, "min")),
)
_QUALITIES = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "dom7": (0, 4, 7, 10),
}


def _tone(freq: float, seconds: float, rate: int, timbre: str) -> Array:
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    for k in range(1, 9):
        if freq * k > rate / 2.2:
            break
        if timbre == "saw":  # bright, every harmonic at 1/k, sustained
            out += np.sin(2 * np.pi * freq * k * t) / k
        else:  # "piano": odd and even partials falling off fast, decaying
            out += np.sin(2 * np.pi * freq * k * t) / k**2 * np.exp(-t * (1.0 + 0.5 * k))
    edge = min(int(0.01 * rate), t.shape[0] // 2)
    ramp = np.ones_like(t)
    ramp[:edge] = np.linspace(0, 1, edge)
    ramp[-edge:] = np.linspace(1, 0, edge)
    return out * ramp


def progression(
    tonic: int,
    minor: bool,
    variant: int = 0,
    *,
    timbre: str = "saw",
    rate: int = 22_050,
    chord_seconds: float = 1.0,
) -> Array:
    """A chord progression in the key (`tonic` pitch class 0-11, major or minor), chords in the
    octave above middle C with the root doubled below in the bass."""
    chords = (_MINOR_PROGRESSIONS if minor else _MAJOR_PROGRESSIONS)[variant % 3]
    pieces = []
    for degree, quality in chords:
        root = 48 + (tonic + degree) % 12  # bass in the octave below middle C
        notes = [root] + [root + 12 + i for i in _QUALITIES[quality]]
        chord = sum(_tone(440.0 * 2 ** ((n - 69) / 12), chord_seconds, rate, timbre) for n in notes)
        pieces.append(np.asarray(chord) / len(notes))
    return np.concatenate(pieces) * 0.5


def key_name(tonic: int, minor: bool) -> str:
    return f"{PITCH_CLASSES[tonic]} {'minor' if minor else 'major'}"


def sine(
    freq: float,
    dbfs: float,
    seconds: float,
    rate: int = 48_000,
    *,
    phase: float = 0.0,
    channels: int = 2,
) -> Array:
    """A sine of peak level `dbfs` on every channel, (channels, frames)."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)
    return np.tile(wave, (channels, 1))


def steps(levels: list[float], seconds: float = 20.0, rate: int = 48_000) -> Array:
    """EBU Tech 3342's stepped tones: a 1 kHz stereo sine at each level in turn."""
    return np.concatenate([sine(1000.0, level, seconds, rate) for level in levels], axis=1)


def mix(seconds: float = 10.0, rate: int = 44_100, seed: int = 0) -> Array:
    """A stereo mix (drums, chords, bass, noise) whose hard-clipped, bright peaks sit between
    samples: the true peak is above the sample peak. About -13 LUFS before scaling."""
    rng = np.random.default_rng(seed)
    groove = drums(120.0 + 10 * (seed % 5), seconds, rate, seed=seed).samples
    harmony = np.concatenate(
        [progression(seed % 12, bool(seed % 2), v, rate=rate, chord_seconds=1.0) for v in range(3)]
    )
    harmony = np.resize(harmony, groove.shape[0])
    t = np.arange(groove.shape[0]) / rate
    air = 0.1 * np.sin(2 * np.pi * rate / 4 * t + np.pi / 4)  # a quarter-rate tone at 45 degrees
    drums_bus = np.clip(1.6 * groove, -0.8, 0.8)  # clipped kicks: overs between the samples
    left = drums_bus + 0.5 * harmony + air + 0.01 * rng.standard_normal(t.shape[0])
    right = 0.8 * drums_bus + 0.6 * np.roll(harmony, rate // 50) + air
    return np.stack([left, right])


# The EQ a reference track is made with: (kind, Hz, dB, Q) of RBJ-cookbook biquads.
KNOWN_EQ = (("low", 120.0, 4.0, 0.7), ("peak", 2500.0, -3.0, 1.0), ("high", 8000.0, 3.0, 0.7))


def _biquad(kind: str, hz: float, gain_db: float, q: float, rate: int) -> tuple[Array, Array]:
    gain = 10 ** (gain_db / 40)
    w = 2 * np.pi * hz / rate
    alpha, cos = np.sin(w) / (2 * q), np.cos(w)
    if kind == "peak":
        b = [1 + alpha * gain, -2 * cos, 1 - alpha * gain]
        a = [1 + alpha / gain, -2 * cos, 1 - alpha / gain]
    else:  # a shelf: "high" or "low"
        root, sign = np.sqrt(gain), (1 if kind == "high" else -1)
        b = [
            gain * ((gain + 1) + sign * (gain - 1) * cos + 2 * root * alpha),
            -2 * sign * gain * ((gain - 1) + sign * (gain + 1) * cos),
            gain * ((gain + 1) + sign * (gain - 1) * cos - 2 * root * alpha),
        ]
        a = [
            (gain + 1) - sign * (gain - 1) * cos + 2 * root * alpha,
            2 * sign * ((gain - 1) - sign * (gain + 1) * cos),
            (gain + 1) - sign * (gain - 1) * cos - 2 * root * alpha,
        ]
    return np.array(b) / a[0], np.array(a) / a[0]


def known_eq(samples: Array, rate: int) -> Array:
    """`samples` through KNOWN_EQ: +4 dB below 120 Hz, -3 dB around 2.5 kHz, +3 dB above 8 kHz."""
    out = samples
    for kind, hz, gain_db, q in KNOWN_EQ:
        b, a = _biquad(kind, hz, gain_db, q, rate)
        out = sps.lfilter(b, a, out, axis=-1)
    return np.asarray(out, dtype=np.float64)
