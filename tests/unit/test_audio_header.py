"""What jacameno.assets.audio reads from a file's header, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from harness.audio import wav_bytes
from jacameno.assets.audio import NotAudio, probe


def test_a_wav_header_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(seconds=0.25, rate=8000, channels=2))
    header = probe(path)
    assert (header.format, header.subtype, header.content_type) == ("WAV", "PCM_16", "audio/wav")
    assert (header.sample_rate, header.channels, header.frames) == (8000, 2, 2000)
    assert header.duration == 0.25


@pytest.mark.parametrize(
    ("extension", "fmt", "content_type"),
    [("flac", "FLAC", "audio/flac"), ("ogg", "OGG", "audio/ogg"), ("aiff", "AIFF", "audio/aiff")],
)
def test_other_containers_are_read(
    tmp_path: Path, extension: str, fmt: str, content_type: str
) -> None:
    path = tmp_path / f"a.{extension}"
    samples = np.sin(np.linspace(0, 440 * 2 * np.pi, 22050)).astype("float32") * 0.5
    soundfile.write(path, samples, 22050, format=fmt)
    header = probe(path)
    assert (header.format, header.content_type, header.sample_rate) == (fmt, content_type, 22050)
    assert header.channels == 1
    assert abs(header.duration - 1.0) < 0.01


@pytest.mark.parametrize(
    "body",
    [
        b"plain text, not audio at all",
        b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 32,  # a WAV header that says nothing
        wav_bytes(seconds=0)[:44],  # a WAV without samples
        b"\xff" * 10,
    ],
)
def test_what_is_not_audio_is_refused(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(body)
    with pytest.raises(NotAudio):
        probe(path)
