"""Sample-level measures: peak, crest factor, stereo correlation and clipping."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

CLIP_LEVEL = 0.999  # of full scale
CLIP_RUN = 3  # consecutive samples at or above CLIP_LEVEL that make one clipping event


def decibels(linear: float) -> float:
    return 20.0 * math.log10(linear) if linear > 0 else -math.inf


def sample_peak(samples: npt.NDArray[np.float64]) -> float:
    """The largest sample magnitude, dBFS."""
    return decibels(float(np.abs(samples).max()))


def crest_factor(samples: npt.NDArray[np.float64]) -> float:
    """Sample peak over RMS (all channels together), dB; 0.0 for silence."""
    rms = math.sqrt(float(np.mean(samples * samples)))
    if rms == 0:
        return 0.0
    return decibels(float(np.abs(samples).max()) / rms)


def stereo_correlation(samples: npt.NDArray[np.float64]) -> float | None:
    """The correlation of the first two channels, as a phase-correlation meter shows it: +1 the
    same signal, 0 unrelated, -1 opposite polarity. None for mono; 1.0 when a channel is silent
    and the other is not would be misleading, so silence on either side gives 0.0."""
    if samples.shape[0] < 2:
        return None
    left, right = samples[0], samples[1]
    energy = math.sqrt(float(left @ left) * float(right @ right))
    return float(left @ right) / energy if energy > 0 else 0.0


def clipping_events(samples: npt.NDArray[np.float64]) -> int:
    """Runs of at least CLIP_RUN consecutive samples at or above CLIP_LEVEL of full scale, summed
    over channels (a single full-scale sample is a peak, not clipping)."""
    events = 0
    for channel in samples:
        hot = np.concatenate(([0], (np.abs(channel) >= CLIP_LEVEL).astype(np.int8), [0]))
        edges = np.diff(hot)
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        events += int(np.count_nonzero(ends - starts >= CLIP_RUN))
    return events
