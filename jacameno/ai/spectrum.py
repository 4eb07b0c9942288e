"""Long-term spectra and zero-phase equalisation, as tensor operations (torch; the GPU when
present): what reference matching and the tilt EQ of jacameno.ai.mastering are made of, and the
spectral distance by which a match is judged."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.fft
import torch

FFT_SIZE = 8192
LOWEST_HZ, HIGHEST_HZ = 20.0, 20_000.0
SMOOTHING_OCTAVES = 1.0 / 3.0
MAX_MATCH_DB = 12.0  # reference matching never boosts or cuts more than this at any frequency
MAX_TILT_DB_PER_OCTAVE = 1.5  # a "gentle" tilt
# Bands of the spectral distance: third octaves from 31.5 Hz to 16 kHz (IEC 61260 centres).
DISTANCE_BANDS_HZ = tuple(1000.0 * 2.0 ** (k / 3.0) for k in range(-15, 13))


def average_power(signal: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Long-term average power spectrum (Welch: Hann windows of FFT_SIZE, half overlapping,
    all channels together), shape (FFT_SIZE // 2 + 1,); the bins are `frequencies()`."""
    window = torch.hann_window(FFT_SIZE, device=signal.device, dtype=signal.dtype)
    frames = signal
    if frames.shape[-1] < FFT_SIZE:
        frames = torch.nn.functional.pad(frames, (0, FFT_SIZE - frames.shape[-1]))
    spectra = torch.stft(
        frames,
        FFT_SIZE,
        hop_length=FFT_SIZE // 2,
        window=window,
        center=False,
        return_complex=True,
    )
    return (spectra.real.square() + spectra.imag.square()).mean(dim=(0, 2))


def frequencies(sample_rate: int, size: int = FFT_SIZE) -> npt.NDArray[np.float64]:
    return np.asarray(np.fft.rfftfreq(size, 1.0 / sample_rate), dtype=np.float64)


def smoothed_db(power: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The power spectrum averaged over SMOOTHING_OCTAVES around each bin, in dB."""
    freqs = torch.as_tensor(frequencies(sample_rate), device=power.device, dtype=torch.float64)
    half = 2.0 ** (SMOOTHING_OCTAVES / 2.0)
    total = torch.cumsum(torch.nn.functional.pad(power.double(), (1, 0)), dim=0)
    low = torch.searchsorted(freqs, freqs / half)
    high = torch.searchsorted(freqs, freqs * half, right=True)
    high = torch.maximum(high, low + 1)
    mean = (total[high] - total[low]) / (high - low)
    return 10.0 * torch.log10(torch.clamp(mean, min=1e-20))


@dataclass(frozen=True, slots=True)
class Profile:
    """A signal's long-term spectrum, measured once: smoothed (dB per bin) for matching, and in
    third-octave bands (dB) for the distance."""

    smoothed: torch.Tensor
    bands: npt.NDArray[np.float64]


def profile(signal: torch.Tensor, sample_rate: int) -> Profile:
    power = average_power(signal, sample_rate)
    return Profile(smoothed_db(power, sample_rate), _bands(power, sample_rate))


def match_curve(source: Profile, reference: Profile, sample_rate: int) -> torch.Tensor:
    """The EQ (dB per bin of `frequencies()`) that gives `source` the spectral balance of
    `reference`: the difference of their smoothed long-term spectra, held flat outside
    LOWEST_HZ-HIGHEST_HZ, limited to +-MAX_MATCH_DB, its mean over the band removed (level is
    the loudness stage's business)."""
    difference = reference.smoothed - source.smoothed
    freqs = torch.as_tensor(frequencies(sample_rate), device=difference.device)
    top = min(HIGHEST_HZ, 0.45 * sample_rate)
    inside = (freqs >= LOWEST_HZ) & (freqs <= top)
    first, last = (int(i) for i in torch.nonzero(inside)[[0, -1], 0])
    curve = difference.clone()
    curve[:first] = difference[first]
    curve[last + 1 :] = difference[last]
    curve = curve - curve[inside].mean()
    return torch.clamp(curve, -MAX_MATCH_DB, MAX_MATCH_DB)


def tilt_curve(db_per_octave: float, sample_rate: int) -> torch.Tensor:
    """A gentle tilt around 1 kHz: +db_per_octave per octave above, the opposite below, flat
    beyond LOWEST_HZ-HIGHEST_HZ."""
    freqs = np.clip(frequencies(sample_rate), LOWEST_HZ, min(HIGHEST_HZ, sample_rate / 2))
    return torch.as_tensor(db_per_octave * np.log2(freqs / 1000.0))


def equalise(signal: torch.Tensor, curve_db: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Filter (channels, frames) by a zero-phase EQ given in dB per bin of `frequencies()`: one
    FFT of the whole signal (padded so nothing wraps around, to an even length of small prime
    factors, which FFTs fastest), the curve interpolated linearly to its bins (both sets of bins
    run evenly from 0 Hz to the Nyquist frequency)."""
    frames = signal.shape[-1]
    size = 2 * scipy.fft.next_fast_len(-(-(frames + FFT_SIZE) // 2), real=True)
    curve = curve_db.to(signal.device, signal.dtype).view(1, 1, -1)
    gain_db = torch.nn.functional.interpolate(
        curve, size=size // 2 + 1, mode="linear", align_corners=True
    ).view(-1)
    spectrum = torch.fft.rfft(signal, n=size)
    filtered: torch.Tensor = torch.fft.irfft(spectrum * torch.pow(10.0, gain_db / 20.0), n=size)
    return filtered[..., :frames]


def band_means(curve_db: torch.Tensor, sample_rate: int) -> list[float]:
    """A curve in dB per bin of `frequencies()`, averaged over each of DISTANCE_BANDS_HZ (0.0
    for a band beyond the Nyquist frequency)."""
    values = curve_db.double().cpu().numpy()
    freqs = frequencies(sample_rate)
    means = []
    for centre in DISTANCE_BANDS_HZ:
        inside = (freqs >= centre / 2 ** (1 / 6)) & (freqs < centre * 2 ** (1 / 6))
        means.append(float(values[inside].mean()) if inside.any() else 0.0)
    return means


def _bands(power: torch.Tensor, sample_rate: int) -> npt.NDArray[np.float64]:
    """Power in each of DISTANCE_BANDS_HZ (third-octave wide), dB."""
    values = power.double().cpu().numpy()
    freqs = frequencies(sample_rate)
    levels = []
    for centre in DISTANCE_BANDS_HZ:
        inside = (freqs >= centre / 2 ** (1 / 6)) & (freqs < centre * 2 ** (1 / 6))
        levels.append(10.0 * math.log10(max(float(values[inside].sum()), 1e-20)))
    return np.array(levels)


def distance(a: Profile, b: Profile) -> float:
    """How far apart two spectral balances are: the RMS over third-octave bands (31.5 Hz-16 kHz)
    of the difference of their levels, after removing the mean difference (overall level is not
    balance), in dB. Bands where either signal is 90 dB below its loudest band are left out
    (there is nothing there to balance)."""
    la, lb = a.bands, b.bands
    used = (la > la.max() - 90.0) & (lb > lb.max() - 90.0)
    difference = la[used] - lb[used]
    return float(np.sqrt(np.mean((difference - difference.mean()) ** 2)))


def spectral_distance(a: torch.Tensor, b: torch.Tensor, sample_rate: int) -> float:
    """`distance` of two signals (channels, frames)."""
    return distance(profile(a, sample_rate), profile(b, sample_rate))
