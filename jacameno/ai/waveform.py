"""Waveform peaks for drawing, as audiowaveform computes them: the channels mixed to one, cut
into blocks of `samples_per_pixel` frames, each block's minimum and maximum as 16-bit integers.
`Peaks.to_json()` is audiowaveform's JSON format (version 2), which peaks.js and wavesurfer read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

RESOLUTIONS = (256, 1024, 4096, 16384)  # frames per pixel: zoomed in to a whole-song overview
_FULL_SCALE = 32767


@dataclass(frozen=True, slots=True)
class Peaks:
    """One resolution: `data` holds min, max, min, max... for `length` pixels."""

    sample_rate: int
    samples_per_pixel: int
    data: npt.NDArray[np.int16]

    @property
    def length(self) -> int:
        return int(self.data.shape[0] // 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 2,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": 16,
            "length": self.length,
            "data": self.data.tolist(),
        }


def peaks(
    samples: npt.NDArray[np.float64],
    sample_rate: int,
    resolutions: tuple[int, ...] = RESOLUTIONS,
) -> list[Peaks]:
    """Min/max pairs at each resolution (the last block may be short; values beyond full scale
    are clipped to it). Raises ValueError for a resolution below 1."""
    if any(r < 1 for r in resolutions):
        raise ValueError(f"samples per pixel must be at least 1, not {min(resolutions)}")
    mixed = samples.mean(axis=0)
    result = []
    for per_pixel in resolutions:
        pixels = -(-mixed.shape[0] // per_pixel)
        padded = np.pad(mixed, (0, pixels * per_pixel - mixed.shape[0]), mode="edge")
        blocks = padded.reshape(pixels, per_pixel)
        pairs = np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=1).reshape(-1)
        scaled = np.round(np.clip(pairs, -1.0, 1.0) * _FULL_SCALE).astype(np.int16)
        result.append(Peaks(sample_rate, per_pixel, scaled))
    return result
