"""`analyse(samples, sample_rate) -> Analysis`: everything an analysis job reports about a piece
of audio (docs/ai.md): tempo with its confidence and octave alternatives, beats and downbeats,
key with the runner-up, loudness (integrated, range), sample and true peak, crest factor, stereo
correlation, clipping, and waveform peaks at several resolutions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from jacameno.ai import key, levels, loudness, onsets, oversampling, tempo, waveform
from jacameno.ai.audio import checked, mono
from jacameno.ai.tempo import Segment

# numbers in the JSON are rounded to what the measures can tell apart
_TIME_DIGITS, _LEVEL_DIGITS = 4, 2


@dataclass(frozen=True, slots=True)
class Analysis:
    """The measures of one piece of audio. Levels in dB (LUFS, dBFS, dBTP), times in seconds;
    a measure that does not exist for this audio (the loudness of silence, the key of a drum
    loop, the correlation of mono) is None."""

    duration: float
    sample_rate: int
    channels: int
    tempo: float | None
    tempo_confidence: float
    tempo_candidates: list[tuple[float, float]]
    tempo_segments: list[Segment]
    beats: list[float]
    downbeats: list[float]
    beats_per_bar: int
    key: str | None
    key_second: str | None
    key_confidence: float
    integrated_loudness: float | None
    loudness_range: float
    sample_peak: float | None
    true_peak: float | None
    crest_factor: float
    stereo_correlation: float | None
    clipping: int
    waveform: list[waveform.Peaks] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The measures as JSON values, without the waveform (a separate asset: see
        `waveform_json`)."""
        return {
            "duration": round(self.duration, _TIME_DIGITS),
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "tempo": {
                "bpm": _rounded(self.tempo, 3),
                "confidence": self.tempo_confidence,
                "candidates": [{"bpm": b, "strength": s} for b, s in self.tempo_candidates],
                "segments": [
                    {
                        "start": round(s.start, _TIME_DIGITS),
                        "bpm": round(s.bpm, 3),
                        "beats": s.beats,
                    }
                    for s in self.tempo_segments
                ],
            },
            "beats": [round(t, _TIME_DIGITS) for t in self.beats],
            "downbeats": [round(t, _TIME_DIGITS) for t in self.downbeats],
            "beats_per_bar": self.beats_per_bar,
            "key": {"name": self.key, "second": self.key_second, "confidence": self.key_confidence},
            "loudness": {
                "integrated": _rounded(self.integrated_loudness, _LEVEL_DIGITS),
                "range": round(self.loudness_range, _LEVEL_DIGITS),
            },
            "sample_peak": _rounded(self.sample_peak, _LEVEL_DIGITS),
            "true_peak": _rounded(self.true_peak, _LEVEL_DIGITS),
            "crest_factor": round(self.crest_factor, _LEVEL_DIGITS),
            "stereo_correlation": _rounded(self.stereo_correlation, 3),
            "clipping": self.clipping,
        }

    def waveform_json(self) -> list[dict[str, Any]]:
        """The waveform peaks, one audiowaveform JSON document per resolution."""
        return [p.to_json() for p in self.waveform]


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def analyse(samples: npt.ArrayLike, sample_rate: int) -> Analysis:
    """Measure everything about `samples` (channels, frames) at `sample_rate` Hz. Raises
    `InvalidAudio` for samples that cannot be processed (jacameno.ai.audio.checked); silence is
    not an error: its measures are None."""
    audio = checked(samples, sample_rate)
    single = mono(audio)
    integrated, loudness_range = loudness.integrated_and_range(audio, sample_rate)
    rhythm = tempo.rhythm(onsets.envelope(single, sample_rate))
    found = key.estimate(single, sample_rate)
    silent = not np.any(audio)
    return Analysis(
        duration=audio.shape[1] / sample_rate,
        sample_rate=sample_rate,
        channels=audio.shape[0],
        tempo=rhythm.bpm or None,
        tempo_confidence=rhythm.confidence,
        tempo_candidates=rhythm.candidates,
        tempo_segments=rhythm.segments,
        beats=rhythm.beats,
        downbeats=rhythm.downbeats,
        beats_per_bar=rhythm.beats_per_bar,
        key=found.name if found and not silent else None,
        key_second=found.second if found and not silent else None,
        key_confidence=found.confidence if found and not silent else 0.0,
        integrated_loudness=_finite(integrated),
        loudness_range=loudness_range,
        sample_peak=_finite(levels.sample_peak(audio)),
        true_peak=_finite(oversampling.true_peak(audio)),
        crest_factor=levels.crest_factor(audio),
        stereo_correlation=levels.stereo_correlation(audio),
        clipping=levels.clipping_events(audio),
        waveform=waveform.peaks(audio, sample_rate),
    )
