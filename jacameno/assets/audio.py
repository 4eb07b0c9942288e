"""What an audio file's header says: its format, sample rate, channels, frames and duration, read
by libsndfile (soundfile) from a file on disk. Only the header and what libsndfile needs to
count frames are read, never the samples into memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import soundfile

# The media type each container is served as (what browsers' <audio> expects).
CONTENT_TYPES = {
    "WAV": "audio/wav",
    "WAVEX": "audio/wav",
    "RF64": "audio/wav",
    "W64": "audio/x-w64",
    "FLAC": "audio/flac",
    "OGG": "audio/ogg",
    "MP3": "audio/mpeg",
    "AIFF": "audio/aiff",
    "CAF": "audio/x-caf",
    "AU": "audio/basic",
}


class NotAudio(ValueError):
    """The file is not audio this server can read (or has no samples)."""


@dataclass(frozen=True, slots=True)
class AudioHeader:
    format: str  # libsndfile's name of the container: WAV, FLAC, OGG, MP3, AIFF, ...
    subtype: str  # the sample encoding: PCM_16, FLOAT, VORBIS, ...
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def probe(path: Path) -> AudioHeader:
    """The header of the audio file at `path`; NotAudio if it is none of CONTENT_TYPES' formats
    or holds no samples. Blocking: call it in a worker thread."""
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, ValueError, TypeError) as exc:  # LibsndfileError is a RuntimeError
        raise NotAudio("not an audio file this server can read") from exc
    if info.format not in CONTENT_TYPES:
        raise NotAudio(f"audio in a format this server does not serve ({info.format})")
    if info.samplerate <= 0 or info.channels <= 0 or info.frames <= 0:
        raise NotAudio("an audio file without samples")
    return AudioHeader(
        str(info.format), str(info.subtype), int(info.samplerate), int(info.channels), info.frames
    )
