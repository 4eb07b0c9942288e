"""A look-ahead true-peak limiter, as tensor operations (torch; the GPU when present).

The gain it needs at each frame is the ceiling over the 4x oversampled peak around that frame
(jacameno.ai.oversampling, the meter's own filter). That need is held over the look-ahead,
released at a constant rate in dB, then averaged over the look-ahead: every value averaged at a
frame is at most the gain that frame needs, so the smooth gain curve never lets a peak through,
and the attack is a ramp as long as the look-ahead. `limit` then measures the result and, in the
rare case that the gain's own movement pushed an inter-sample peak over, limits again a little
lower, until the ceiling holds."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from jacameno.ai.oversampling import peak_envelope

LOOKAHEAD_SECONDS = 0.005
RELEASE_DB_PER_SECOND = 40.0
MARGIN_DB = 0.05  # aim this far under the ceiling: the gain's own movement may add a little
_PASSES = 6


@dataclass(frozen=True, slots=True)
class Limited:
    """The limited signal, its true peak (dBTP) and the deepest gain reduction (dB)."""

    signal: torch.Tensor
    true_peak: float
    max_reduction: float


def _forward_max(values: torch.Tensor, width: int) -> torch.Tensor:
    """values[n] -> max(values[n : n + width]) (nothing beyond the end) in O(frames), whatever
    the width (van Herk / Gil-Werman: running maxima within blocks of `width`, from the left and
    from the right; a window is the right-running max at its start and the left-running max at
    its end)."""
    count = values.shape[0]
    blocks = -(-(count + width) // width)
    padded = torch.nn.functional.pad(values, (0, blocks * width - count), value=-math.inf)
    padded = padded.view(blocks, width)
    from_left = torch.cummax(padded, dim=1).values.reshape(-1)
    from_right = torch.cummax(padded.flip(1), dim=1).values.flip(1).reshape(-1)
    return torch.maximum(from_right[:count], from_left[width - 1 : width - 1 + count])


def _backward_mean(values: torch.Tensor, width: int) -> torch.Tensor:
    """values[n] -> mean(values[n - width + 1 : n + 1]), the first value repeated before the
    start (so a signal that starts loud is limited from its first frame). Summed in float64:
    float32 running sums over a song lose hundredths of a dB."""
    values = torch.cat((values[:1].expand(width - 1), values))
    total = torch.cumsum(torch.nn.functional.pad(values, (1, 0)), dim=0, dtype=torch.float64)
    lagged = torch.nn.functional.pad(total[:-width], (width, 0))[: total.shape[0]]
    return ((total - lagged)[width:] / width).to(values.dtype)


class Need:
    """What the limiter needs of a signal, measured once from its peak envelope and valid for
    any gain and ceiling: the envelope's level in dB (a frame's interpolated points reach
    half-way to its neighbours: the worse of the two), held over the look-ahead and released at
    RELEASE_DB_PER_SECOND. Holding and releasing commute with adding a constant and with
    clamping at 0 dB, so the reduction a gain and a ceiling ask for is this level, offset,
    clamped and averaged over the look-ahead: the search of mastering tries a gain without
    holding and releasing again."""

    def __init__(self, envelope: torch.Tensor, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.width = max(2, round(LOOKAHEAD_SECONDS * sample_rate))
        around = torch.maximum(envelope, torch.nn.functional.pad(envelope[:-1], (1, 0)))
        level = 20.0 * torch.log10(around)  # -inf where silent: never needs anything
        held = _forward_max(level, self.width + 1).double()
        # constant-rate release: max over earlier frames k of held[k] - rate * (n - k); in
        # float64, as the ramp grows by thousands of dB over a song
        rate = RELEASE_DB_PER_SECOND / sample_rate
        ramp = torch.arange(held.shape[0], dtype=torch.float64, device=held.device) * rate
        self.released = (torch.cummax(held + ramp, dim=0).values - ramp).float()

    def scaled(self, gain_db: float) -> Need:
        """The need of the signal times `gain_db`."""
        scaled = copy.copy(self)
        scaled.released = self.released + gain_db
        return scaled

    def reduction_db(self, ceiling: float, gain_db: float = 0.0) -> torch.Tensor:
        """The gain reduction (dB, >= 0) per frame that keeps the envelope times `gain_db`
        under `ceiling` (linear)."""
        offset = gain_db - 20.0 * math.log10(ceiling)
        return _backward_mean(torch.clamp(self.released + offset, min=0.0), self.width + 1)


def reduction_db(envelope: torch.Tensor, ceiling: float, sample_rate: int) -> torch.Tensor:
    """The gain reduction (dB, >= 0) per frame that keeps `envelope` (peak_envelope of the
    signal, linear) under `ceiling` (linear)."""
    return Need(envelope, sample_rate).reduction_db(ceiling)


def limit(
    signal: torch.Tensor,
    ceiling_db: float,
    sample_rate: int,
    envelope: torch.Tensor | None = None,
    need: Need | None = None,
) -> Limited:
    """Limit `signal` (channels, frames; channels linked) so its true peak is at most
    `ceiling_db` dBTP. The output is delayed by nothing: the look-ahead reads ahead instead.
    `envelope`, when the caller has it, is `peak_envelope(signal)` (saves one oversampling), and
    `need` its `Need`."""
    envelope = peak_envelope(signal) if envelope is None else envelope
    need = Need(envelope, sample_rate) if need is None else need
    target = ceiling_db - MARGIN_DB
    deepest = 0.0
    out, peak = signal, float(envelope.max().item())
    for _ in range(_PASSES):
        reduction = need.reduction_db(10.0 ** (target / 20.0))
        gain = torch.pow(10.0, -reduction / 20.0).to(signal.dtype)
        out = signal * gain
        deepest = max(deepest, float(reduction.max().item()))
        peak = float(peak_envelope(out).max().item())
        over = 20.0 * torch.log10(torch.tensor(max(peak, 1e-12))).item() - ceiling_db
        if over <= 0:
            break
        target -= over + 0.01
    else:
        # never seen in the tests; a plain gain makes the ceiling hold whatever happened above
        out = out * (10.0 ** (ceiling_db / 20.0) / peak)
        peak = float(peak_envelope(out).max().item())
    true_peak = 20.0 * torch.log10(torch.tensor(max(peak, 1e-12))).item()
    return Limited(out, true_peak, deepest)
