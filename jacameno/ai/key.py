"""Musical key from a chromagram: the pitch-class profile of the whole piece (spectral peaks,
each counted at its pitch class) correlated with the Krumhansl-Kessler key profiles, rotated to
all 24 keys, with the bass line and the closing chord weighted as a listener would (a cadence
ends on the tonic, the bass states it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl & Kessler's probe-tone ratings (1982), from the tonic upwards
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_RATE = 11_025  # Hz: chords need nothing above 2 kHz
_FFT = 4096  # 2.7 Hz bins at 11 kHz
_HOP = 1024
_LOW_HZ, _HIGH_HZ, _BASS_HZ = 60.0, 2000.0, 260.0
_BASS_WEIGHT, _ENDING_WEIGHT, _ENDING_SHARE = 0.5, 0.5, 0.15


@dataclass(frozen=True, slots=True)
class Key:
    """The most likely key, the runner-up and a confidence in [0, 1] (how far the best stands
    above the second, relative to the spread of all 24 scores)."""

    name: str  # "A minor"
    second: str
    confidence: float
    scores: dict[str, float]


def key_names() -> list[str]:
    return [f"{pc} major" for pc in PITCH_CLASSES] + [f"{pc} minor" for pc in PITCH_CLASSES]


def chroma(mono: npt.NDArray[np.float64], sample_rate: int) -> tuple[npt.NDArray[np.float64], ...]:
    """(frames x 12 chroma, frames x 12 bass chroma) from the spectral peaks of each frame."""
    factor = math.gcd(sample_rate, _RATE)
    signal = sps.resample_poly(mono, _RATE // factor, sample_rate // factor)
    if signal.shape[0] < _FFT:
        signal = np.pad(signal, (0, _FFT - signal.shape[0]))
    count = 1 + (signal.shape[0] - _FFT) // _HOP
    frames = np.lib.stride_tricks.as_strided(
        signal, shape=(count, _FFT), strides=(signal.strides[0] * _HOP, signal.strides[0])
    )
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(_FFT), axis=1))
    freqs = np.fft.rfftfreq(_FFT, 1.0 / _RATE)
    band = (freqs >= _LOW_HZ) & (freqs <= _HIGH_HZ)
    # peaks only: the skirts of a partial's window would smear it over neighbouring semitones
    peak = np.zeros_like(magnitude, dtype=bool)
    peak[:, 1:-1] = (magnitude[:, 1:-1] > magnitude[:, :-2]) & (
        magnitude[:, 1:-1] >= magnitude[:, 2:]
    )
    weights = np.where(peak & band, np.sqrt(magnitude), 0.0)
    with np.errstate(divide="ignore"):
        pitch = 69.0 + 12.0 * np.log2(np.maximum(freqs, 1e-9) / 440.0)
    classes = np.round(pitch).astype(int) % 12
    onto = np.zeros((freqs.shape[0], 12))
    onto[np.arange(freqs.shape[0]), classes] = 1.0
    bass = freqs <= _BASS_HZ
    return weights @ onto, (weights * bass) @ onto


def _correlations(profile: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pearson correlation of a 12-bin profile with all 24 rotated key profiles (zeros for a
    flat profile, which says nothing about any key)."""
    centred = profile - profile.mean()
    spread = float(np.linalg.norm(centred))
    if spread == 0:
        return np.zeros(24)
    scores = []
    for template in (_MAJOR, _MINOR):
        for tonic in range(12):
            rotated = np.roll(template, tonic)
            rotated = rotated - rotated.mean()
            scores.append(float(centred @ rotated) / (spread * float(np.linalg.norm(rotated))))
    return np.array(scores)


def estimate(mono: npt.NDArray[np.float64], sample_rate: int) -> Key | None:
    """The key of a mono signal; None when it has no pitched content to judge by."""
    frames, bass_frames = chroma(mono, sample_rate)
    whole = frames.sum(axis=0)
    if whole.sum() <= 0:
        return None
    tail = max(1, int(frames.shape[0] * _ENDING_SHARE))
    scores = (
        _correlations(whole)
        + _BASS_WEIGHT * _correlations(bass_frames.sum(axis=0))
        + _ENDING_WEIGHT * _correlations(frames[-tail:].sum(axis=0))
    ) / (1.0 + _BASS_WEIGHT + _ENDING_WEIGHT)
    order = np.argsort(scores)[::-1]
    names = key_names()
    spread = float(scores.max() - np.median(scores)) or 1.0
    confidence = float(np.clip((scores[order[0]] - scores[order[1]]) / spread, 0.0, 1.0))
    return Key(
        name=names[order[0]],
        second=names[order[1]],
        confidence=round(confidence, 3),
        scores={names[i]: round(float(scores[i]), 4) for i in order},
    )
