"""4x oversampling by a polyphase interpolation filter, as tensor operations (torch), and the
true peak it measures (ITU-R BS.1770-4 Annex 2).

The same code runs on the GPU when one is present and on the CPU otherwise (`device()`); the
meter of jacameno.ai.loudness and the limiter of jacameno.ai.limiter share this one filter, so a
limiter that holds its ceiling here holds it on the meter too."""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt
import torch

FACTOR = 4
# taps per phase, and the Kaiser window's beta: a sine up to 0.46 fs reads within 0.1 dB of its
# peak at any phase (most of that the 4x grid's own error), and hard-clipped mixes, whose
# overshoots come from content near Nyquist, read within 0.1 dB of a 16x resampler (BS.1770-4
# asks only 12 taps, which reads such mixes a dB low: a limiter trusting it would let overs by)
TAPS_PER_PHASE = 24
_BETA = 6.0


@functools.cache
def device() -> torch.device:
    """`cuda` when a GPU is present, else the CPU: where every tensor of the package lives."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def limit_threads(count: int) -> None:
    """Let torch use at most `count` threads in this process. A worker pool of several processes
    should give each one (or cores / processes): torch's default of one thread per core makes
    processes wait on each other's cores (measured: a loaded two-core machine masters 1.5-3x
    slower with two threads than with one)."""
    torch.set_num_threads(max(1, count))


@functools.cache
def _kernel(dev: torch.device) -> torch.Tensor:
    """The FACTOR phases of a windowed-sinc lowpass at the original Nyquist, shaped
    (FACTOR, 1, TAPS_PER_PHASE) for conv1d; each phase sums to 1 (no gain at DC)."""
    length = FACTOR * TAPS_PER_PHASE
    # centred on a whole input frame, so that phase 0 passes the samples through unchanged
    n = np.arange(length) - length / 2
    prototype = np.sinc(n / FACTOR) * np.kaiser(length + 1, _BETA)[:-1]
    phases = prototype.reshape(TAPS_PER_PHASE, FACTOR).T[:, ::-1]
    phases = phases / phases.sum(axis=1, keepdims=True)
    return torch.tensor(phases.copy(), dtype=torch.float32, device=dev).unsqueeze(1)


CHUNK_FRAMES = 1 << 20  # peak_envelope's working set: 3 phases x channels x this many floats
# the kernel's centre tap sits this many taps in: padding puts it on frame n
_BEFORE = TAPS_PER_PHASE // 2 - 1
_AFTER = TAPS_PER_PHASE - 1 - _BEFORE
# peak_envelope folds the signal into this many interleaved rows (frame n is row n % _FOLD): one
# convolution of _FOLD channels in, 3 x _FOLD out and a few taps is the same filter as 3 phases
# of TAPS_PER_PHASE taps over one row, and runs about twice as fast on a CPU (a wider product)
_FOLD = 16


def oversample(signal: torch.Tensor, phases: slice = slice(None)) -> torch.Tensor:
    """Interpolate (channels, frames) to (channels, FACTOR, frames): [c, p, n] is the value at
    frame n + p / FACTOR ([c, 0, n] is the sample itself); beyond the ends the signal is 0.
    `phases` selects some of the FACTOR phases (the meter skips phase 0, the samples)."""
    padded = torch.nn.functional.pad(signal.unsqueeze(1), (_BEFORE, _AFTER))
    return torch.nn.functional.conv1d(padded, _kernel(signal.device)[phases])


@functools.cache
def _folded_kernel(dev: torch.device) -> torch.Tensor:
    """The between-frames phases of `_kernel` for `_FOLD` interleaved rows, shaped
    (3 x _FOLD, _FOLD, taps) for conv1d: output channel (p, r) at step q is phase p + 1 at
    frame _FOLD q + r, reading input frame _FOLD (q + a) + b from row b at tap a."""
    phases = _kernel(dev)[1:, 0].cpu()
    between = phases.shape[0]
    taps = (_FOLD - 1 + TAPS_PER_PHASE - 1) // _FOLD + 1
    folded = torch.zeros(between, _FOLD, _FOLD, taps, dtype=phases.dtype)
    for r in range(_FOLD):
        for j in range(TAPS_PER_PHASE):
            a, b = divmod(r + j, _FOLD)
            folded[:, r, b, a] = phases[:, j]
    return folded.reshape(between * _FOLD, _FOLD, taps).to(dev)


def _between_peaks(padded: torch.Tensor, frames: int) -> torch.Tensor:
    """The largest magnitude over channels of the FACTOR - 1 interpolated points after each of
    `frames` frames, from the signal padded by _BEFORE before and at least _AFTER after."""
    kernel = _folded_kernel(padded.device)
    steps = -(-frames // _FOLD)
    needed = (steps + kernel.shape[-1] - 1) * _FOLD
    padded = torch.nn.functional.pad(padded[..., :needed], (0, max(0, needed - padded.shape[-1])))
    rows = padded.reshape(padded.shape[0], -1, _FOLD).transpose(1, 2)
    between = torch.nn.functional.conv1d(rows, kernel).abs()
    peaks = between.view(padded.shape[0], FACTOR - 1, _FOLD, steps).amax(dim=(0, 1))
    return peaks.t().reshape(-1)[:frames]


def peak_envelope(signal: torch.Tensor) -> torch.Tensor:
    """Per frame, the largest magnitude of any channel at any of the frame's FACTOR oversampled
    points (the frame itself and the FACTOR - 1 between it and the next): shape (frames,). What
    the limiter keeps under its ceiling and the meter reads. Computed CHUNK_FRAMES at a time
    (each with the neighbours the filter reaches), so a long song needs no gigabytes."""
    frames = signal.shape[-1]
    padded = torch.nn.functional.pad(signal, (_BEFORE, _AFTER))
    chunk = max(_FOLD, CHUNK_FRAMES // _FOLD * _FOLD)
    pieces = []
    for start in range(0, frames, chunk):
        stop = min(frames, start + chunk)
        pieces.append(_between_peaks(padded[..., start:], stop - start))
    return torch.maximum(torch.cat(pieces), signal.abs().amax(dim=0))


def to_tensor(samples: npt.ArrayLike) -> torch.Tensor:
    """Samples (channels, frames) as a float32 tensor on `device()`."""
    return torch.as_tensor(np.asarray(samples, dtype=np.float32), device=device())


def true_peak_linear(samples: npt.ArrayLike) -> float:
    """The largest magnitude of the 4x oversampled signal (and of the samples), linear."""
    return float(peak_envelope(to_tensor(samples)).max().item())


def true_peak(samples: npt.ArrayLike) -> float:
    """True peak in dBTP (dB relative to full scale of the 4x oversampled signal); -inf for
    digital silence."""
    peak = true_peak_linear(samples)
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
