"""Audio files in and out (soundfile: WAV, FLAC, OGG, MP3 and the rest of libsndfile), and the
one form of samples every function of the package takes: a float array shaped
(channels, frames), values nominally within [-1, 1] (louder values are kept, not clipped)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soundfile as sf

from jacameno.ai.errors import InvalidAudio, UnreadableAudio

Samples = npt.NDArray[np.float32] | npt.NDArray[np.float64]

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
# what `write` accepts as a subtype, by name; PCM_24 by default (mastered audio keeps headroom
# below 0 dBFS, and 24 bits keeps the quantisation noise 140 dB down)
SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")


@dataclass(frozen=True, slots=True)
class Audio:
    """Decoded audio: samples (channels, frames) in float32, and their rate in Hz."""

    samples: npt.NDArray[np.float32]
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def checked(samples: npt.ArrayLike, sample_rate: int) -> npt.NDArray[np.float64]:
    """The samples as float64 (channels, frames), a 1-D array read as mono; raises
    `InvalidAudio` for no frames, more than `MAX_CHANNELS` channels, NaN or infinite values, or a
    sample rate outside [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE]."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise InvalidAudio(f"the sample rate must be an integer number of Hz, not {sample_rate!r}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InvalidAudio(
            f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )
    try:
        array = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidAudio(f"samples are not numbers: {exc}") from exc
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise InvalidAudio(f"samples must be shaped (channels, frames), not {array.shape}")
    if not 1 <= array.shape[0] <= MAX_CHANNELS:
        raise InvalidAudio(f"{array.shape[0]} channels: between 1 and {MAX_CHANNELS} are supported")
    if array.shape[1] == 0:
        raise InvalidAudio("the audio has no frames")
    if not np.isfinite(array).all():
        raise InvalidAudio("the samples contain NaN or infinite values")
    return array


def read(source: str | Path | bytes | BinaryIO) -> Audio:
    """Decode a file (a path, its bytes or a binary file object). Raises `UnreadableAudio` when
    libsndfile cannot decode it and `InvalidAudio` when what it decodes cannot be processed."""
    handle: str | Path | BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        data, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, EOFError) as exc:
        raise UnreadableAudio(f"not a readable audio file: {exc}") from exc
    samples = np.ascontiguousarray(data.T)
    checked(samples, int(rate))
    return Audio(samples, int(rate))


def write(
    target: str | Path | BinaryIO,
    samples: npt.ArrayLike,
    sample_rate: int,
    *,
    format: str = "WAV",
    subtype: str = "PCM_24",
) -> None:
    """Encode samples (channels, frames) to `target` as `format` (WAV, FLAC...) with `subtype`
    (one of SUBTYPES). PCM subtypes clip at full scale, which is why mastering leaves headroom."""
    if subtype not in SUBTYPES:
        raise InvalidAudio(f"subtype {subtype!r} is not one of {', '.join(SUBTYPES)}")
    array = checked(samples, sample_rate)
    try:
        sf.write(target, array.T, sample_rate, format=format, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise InvalidAudio(f"cannot write {format}/{subtype}: {exc}") from exc


def mono(samples: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The channels' mean, 1-D: what tempo and key listen to."""
    return np.asarray(samples.mean(axis=0), dtype=np.float64)
