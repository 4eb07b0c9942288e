"""The onset strength envelope that tempo and beats listen to: log-magnitude spectral flux at
200 frames per second, and the sub-frame time of the onset nearest a frame."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

FRAMES_PER_SECOND = 200.0
_ANALYSIS_RATE = 22_050  # Hz: onsets need no more, and it halves the work at 44.1 kHz
_WINDOW_SECONDS = 0.023
# Where the flux of a sudden onset peaks relative to the onset itself (the window is centred on
# its frame, so the log spectrum jumps a little before): measured on clicks and kicks.
_LATENCY_SECONDS = -0.0045
_BAND_EDGES_HZ = (0.0, 200.0, 2000.0, 1e6)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Onset strength per frame (mean 0, unit variance; frame i is at i / fps seconds)."""

    values: npt.NDArray[np.float64]
    fps: float
    lows: npt.NDArray[np.float64]  # the same for the band below 200 Hz alone (kick drums)
    decibels: npt.NDArray[np.float64]  # the frame's energy, for accents

    def time(self, frame: float) -> float:
        return frame / self.fps - _LATENCY_SECONDS

    def frame(self, seconds: float) -> float:
        return (seconds + _LATENCY_SECONDS) * self.fps


def envelope(mono: npt.NDArray[np.float64], sample_rate: int) -> Envelope:
    """The onset strength of a mono signal: the half-wave rectified rise of the log-compressed
    magnitude spectrum between consecutive frames, summed over frequency, then normalised."""
    signal, rate = _resampled(mono, sample_rate)
    hop = max(1, round(rate / FRAMES_PER_SECOND))
    size = 1 << math.ceil(math.log2(_WINDOW_SECONDS * rate))
    padded = np.pad(signal, (size // 2, size // 2))
    count = 1 + (padded.shape[0] - size) // hop
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(count, size), strides=(padded.strides[0] * hop, padded.strides[0])
    )
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1))
    # compress so that quiet and loud onsets both count; the floor keeps noise from flickering
    logged = np.log1p(1000.0 * spectrum / max(float(spectrum.max()), 1e-12))
    rise = np.maximum(np.diff(logged, axis=0, prepend=logged[:1]), 0.0)
    # Each band counts alike, so a kick (a few low bins) weighs as much as a hi-hat (most bins).
    edges = np.searchsorted(np.fft.rfftfreq(size, 1.0 / rate), _BAND_EDGES_HZ)
    bands = [_normalised(rise[:, a:b].mean(axis=1)) for a, b in itertools.pairwise(edges)]
    energy = (spectrum * spectrum).sum(axis=1)
    decibels = 10.0 * np.log10(np.maximum(energy, 1e-12 * max(float(energy.max()), 1e-30)))
    return Envelope(_normalised(np.sum(bands, axis=0)), rate / hop, bands[0], decibels)


def _normalised(flux: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    std = float(flux.std())
    return (flux - flux.mean()) / std if std > 0 else np.zeros_like(flux)


def _resampled(mono: npt.NDArray[np.float64], rate: int) -> tuple[npt.NDArray[np.float64], int]:
    if rate <= _ANALYSIS_RATE * 1.5:
        return mono, rate
    factor = math.gcd(rate, _ANALYSIS_RATE)
    down = sps.resample_poly(mono, _ANALYSIS_RATE // factor, rate // factor)
    return np.asarray(down, dtype=np.float64), _ANALYSIS_RATE


def refine(env: Envelope, frame: int, reach: int = 3) -> tuple[float, float]:
    """The onset peak within `reach` frames of `frame`: (its fractional frame by a parabola
    through the peak and its neighbours, its strength)."""
    values = env.values
    low, high = max(1, frame - reach), min(values.shape[0] - 1, frame + reach + 1)
    if high - low < 1:
        return float(frame), float(values[min(frame, values.shape[0] - 1)])
    peak = low + int(np.argmax(values[low:high]))
    if not 1 <= peak < values.shape[0] - 1:
        return float(peak), float(values[peak])
    left, centre, right = values[peak - 1], values[peak], values[peak + 1]
    curvature = left - 2.0 * centre + right
    shift = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return peak + float(np.clip(shift, -0.5, 0.5)), float(centre)
