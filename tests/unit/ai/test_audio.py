"""Audio files in and out through soundfile, and the refusals of what cannot be read."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from jacameno.ai import audio, testsignals
from jacameno.ai.errors import InvalidAudio, UnreadableAudio


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_24"), ("FLAC", "PCM_16"), ("WAV", "FLOAT")]
)
def test_written_audio_reads_back_the_same(tmp_path: Path, fmt: str, subtype: str) -> None:
    tone = testsignals.sine(440.0, -3.0, 0.5, 48_000)
    path = tmp_path / f"tone.{fmt.lower()}"
    audio.write(path, tone, 48_000, format=fmt, subtype=subtype)
    back = audio.read(path)
    assert back.sample_rate == 48_000
    assert (back.channels, back.frames) == tone.shape
    assert back.seconds == pytest.approx(0.5)
    assert back.samples.dtype == np.float32
    assert np.abs(back.samples - tone).max() < (1e-4 if subtype == "PCM_16" else 1e-6)


def test_audio_reads_from_bytes_and_file_objects() -> None:
    buffer = io.BytesIO()
    audio.write(buffer, testsignals.sine(440.0, -3.0, 0.2, 44_100, channels=1), 44_100)
    from_bytes = audio.read(buffer.getvalue())
    buffer.seek(0)
    from_file = audio.read(buffer)
    assert from_bytes.channels == from_file.channels == 1
    assert np.array_equal(from_bytes.samples, from_file.samples)


@pytest.mark.parametrize(
    "content", [b"", b"RIFF\x00\x00\x00\x00WAVEjunk", b"not audio at all" * 10]
)
def test_bytes_that_are_not_audio_are_refused(content: bytes) -> None:
    with pytest.raises(UnreadableAudio, match="not a readable audio file"):
        audio.read(content)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudio):
        audio.read(tmp_path / "missing.wav")


def test_writing_refuses_unknown_subtypes_and_bad_samples(tmp_path: Path) -> None:
    with pytest.raises(InvalidAudio, match="subtype"):
        audio.write(tmp_path / "x.wav", np.zeros((1, 10)), 44_100, subtype="PCM_12")
    with pytest.raises(InvalidAudio, match="NaN"):
        audio.write(tmp_path / "x.wav", np.full((1, 10), np.nan), 44_100)
    with pytest.raises(InvalidAudio, match="cannot write"):
        audio.write(tmp_path / "x.wav", np.zeros((1, 10)), 44_100, format="NOPE")
