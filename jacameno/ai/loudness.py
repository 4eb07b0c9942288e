"""Loudness after ITU-R BS.1770-4 (K-weighting, 400 ms blocks gated at -70 LUFS and -10 LU) and
loudness range after EBU Tech 3342 (3 s short-term loudness gated at -70 LUFS and -20 LU, the
spread between its 10th and 95th percentiles). Checked against pyloudnorm and the EBU test
signals by tests/unit/ai/test_loudness.py."""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
from scipy import signal as sps

ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the absolute-gated loudness (integrated)
RANGE_RELATIVE_GATE = -20.0  # LU (loudness range)
BLOCK_SECONDS = 0.4
SHORT_TERM_SECONDS = 3.0
STEP_SECONDS = 0.1  # 75 % overlap of the 400 ms blocks; 10 Hz short-term values

# The K-weighting's two stages as analog prototypes (a high shelf of +4 dB around 1.7 kHz, a
# high-pass at 38 Hz), whose bilinear transforms give the standard's 48 kHz coefficients
# exactly and the same curve at any other rate.
_SHELF_HZ, _SHELF_DB, _SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
_HIGHPASS_HZ, _HIGHPASS_Q = 38.13547087602444, 0.5003270373238773


@functools.cache
def k_weighting(sample_rate: int) -> npt.NDArray[np.float64]:
    """The K-weighting filter at `sample_rate` as second-order sections (scipy's sos form)."""
    k = math.tan(math.pi * _SHELF_HZ / sample_rate)
    vh = 10.0 ** (_SHELF_DB / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * _HIGHPASS_HZ / sample_rate)
    a0 = 1.0 + k / _HIGHPASS_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HIGHPASS_Q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weights(channels: int) -> npt.NDArray[np.float64]:
    """BS.1770-4's weights: 1.0 for left, right and centre, 1.41 for the surrounds (5.0 and 5.1
    in ITU order L R C [LFE] Ls Rs, the LFE left out); 1.0 for any other layout."""
    if channels == 5:
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


def weighted_power(samples: npt.NDArray[np.float64], sample_rate: int) -> npt.NDArray[np.float64]:
    """Channel-weighted sum of the K-weighted squares, per frame: the integrated loudness of
    the signal times a slowly varying gain g is `loudness_of_power(power * g**2)`, which is how
    mastering tries gains without filtering again."""
    weighted = sps.sosfilt(k_weighting(sample_rate), samples, axis=-1)
    return np.asarray(channel_weights(samples.shape[0]) @ (weighted * weighted))


def _windows(
    power: npt.NDArray[np.float64], sample_rate: int, seconds: float
) -> npt.NDArray[np.float64]:
    """Mean power of each window of `seconds`, one every STEP_SECONDS (none if too short)."""
    size = round(seconds * sample_rate)
    step = round(STEP_SECONDS * sample_rate)
    if power.shape[0] < size:
        return np.zeros(0)
    cumulative = np.concatenate(([0.0], np.cumsum(power)))
    starts = np.arange(0, power.shape[0] - size + 1, step)
    return np.asarray((cumulative[starts + size] - cumulative[starts]) / size)


def _lufs(power: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore"):
        return np.asarray(-0.691 + 10.0 * np.log10(power))


def _gated_loudness(blocks: npt.NDArray[np.float64]) -> float:
    levels = _lufs(blocks)
    above = blocks[levels > ABSOLUTE_GATE]
    if above.size == 0:
        return -math.inf
    threshold = float(_lufs(above.mean())) + RELATIVE_GATE
    kept = blocks[(levels > ABSOLUTE_GATE) & (levels > threshold)]
    return float(_lufs(kept.mean()))


def integrated_loudness(samples: npt.NDArray[np.float64], sample_rate: int) -> float:
    """Integrated (gated) loudness in LUFS; -inf when no block passes the absolute gate or the
    audio is shorter than one 400 ms block."""
    blocks = _windows(weighted_power(samples, sample_rate), sample_rate, BLOCK_SECONDS)
    return _gated_loudness(blocks)


def loudness_of_power(power: npt.NDArray[np.float64], sample_rate: int) -> float:
    """Integrated loudness (LUFS) of a `weighted_power` sequence."""
    return _gated_loudness(_windows(power, sample_rate, BLOCK_SECONDS))


def integrated_and_range(samples: npt.NDArray[np.float64], sample_rate: int) -> tuple[float, float]:
    """(integrated loudness, loudness range) with one pass of the K-weighting filter."""
    power = weighted_power(samples, sample_rate)
    integrated = _gated_loudness(_windows(power, sample_rate, BLOCK_SECONDS))
    return integrated, range_of(_lufs(_windows(power, sample_rate, SHORT_TERM_SECONDS)))


def short_term(samples: npt.NDArray[np.float64], sample_rate: int) -> npt.NDArray[np.float64]:
    """Short-term loudness (3 s windows) every 100 ms, LUFS (-inf for silent windows)."""
    return _lufs(_windows(weighted_power(samples, sample_rate), sample_rate, SHORT_TERM_SECONDS))


def loudness_range(samples: npt.NDArray[np.float64], sample_rate: int) -> float:
    """Loudness range in LU (EBU Tech 3342); 0.0 when fewer than two short-term values pass the
    gates (shorter than 3 s, or silent)."""
    return range_of(short_term(samples, sample_rate))


def range_of(levels: npt.NDArray[np.float64]) -> float:
    """LRA of short-term levels already measured (so `analyse` filters the audio once)."""
    levels = levels[levels > ABSOLUTE_GATE]
    if levels.size < 2:
        return 0.0
    mean_power = float(np.mean(10.0 ** (levels / 10.0)))
    threshold = 10.0 * math.log10(mean_power) + RANGE_RELATIVE_GATE
    kept = levels[levels > threshold]
    if kept.size < 2:
        return 0.0
    low, high = np.percentile(kept, [10.0, 95.0])
    return float(high - low)
