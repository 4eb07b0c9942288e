"""The reference tools load/bench_ai.py measures jacameno.ai against, each behind one function
with the same shape as ours: librosa's beat tracker, pyloudnorm's meter, Matchering 2.0 and a
plain pedalboard limiter chain. Imported by the benchmark only (the `bench` extra)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import librosa
import matchering
import numpy as np
import numpy.typing as npt
import pedalboard
import pyloudnorm
import soundfile

Array = npt.NDArray[np.float64]


def librosa_beats(mono: Array, rate: int) -> tuple[float, list[float]]:
    """librosa.beat.beat_track: (tempo in BPM, beat times in seconds)."""
    tempo, beats = librosa.beat.beat_track(y=mono.astype(np.float32), sr=rate, units="time")
    return float(np.atleast_1d(tempo)[0]), [float(t) for t in beats]


def pyloudnorm_integrated(samples: Array, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples.T))


def pyloudnorm_range(samples: Array, rate: int) -> float:
    return float(pyloudnorm.Meter(rate).loudness_range(samples.T))


def pedalboard_chain(samples: Array, rate: int, lufs: float, ceiling: float) -> Array:
    """What one would write with pedalboard asked for `lufs` and `ceiling`: the gain pyloudnorm
    says, then pedalboard's Limiter with its threshold at the ceiling."""
    gain = lufs - pyloudnorm_integrated(samples, rate)
    board = pedalboard.Pedalboard(
        [pedalboard.Gain(gain_db=gain), pedalboard.Limiter(threshold_db=ceiling, release_ms=100)]
    )
    return np.asarray(board(samples.astype(np.float32), rate), dtype=np.float64)


def matchering_master(samples: Array, reference: Array, rate: int) -> Array:
    """Matchering 2.0 with its defaults (its own limiter on), through files as it works."""
    with tempfile.TemporaryDirectory() as folder:
        target, ref, out = (Path(folder) / name for name in ("t.wav", "r.wav", "o.wav"))
        soundfile.write(target, samples.T, rate, subtype="FLOAT")
        soundfile.write(ref, reference.T, rate, subtype="FLOAT")
        matchering.log(lambda _message: None)
        matchering.process(
            target=str(target),
            reference=str(ref),
            results=[matchering.Result(str(out), "FLOAT", use_limiter=True)],
        )
        data, _ = soundfile.read(out, always_2d=True)
    return np.asarray(data.T, dtype=np.float64)
