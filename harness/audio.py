"""Audio files made on the spot, for tests and benchmarks: WAV written with the standard library
(no numpy), a tone whose samples differ at every offset so a misplaced byte range shows."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path


def wav_bytes(
    seconds: float = 0.5, rate: int = 8000, channels: int = 1, tone: float = 440.0
) -> bytes:
    """A 16-bit PCM WAV of a sine tone."""
    frames = int(seconds * rate)
    samples = bytearray()
    for i in range(frames):
        value = int(12000 * math.sin(2 * math.pi * tone * i / rate)) + (i % 7)
        samples += struct.pack("<h", value) * channels
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(bytes(samples))
    return out.getvalue()


def write_wav(
    path: Path, size: int, rate: int = 44100, channels: int = 2, tone: float = 440.0
) -> Path:
    """A WAV of about `size` bytes at `path`, written a second at a time (never all in
    memory); its samples repeat a one-second tone (another `tone`, other content)."""
    second = bytearray()
    for i in range(rate):
        value = int(12000 * math.sin(2 * math.pi * tone * i / rate))
        second += struct.pack("<h", value) * channels
    frames_per_second = rate
    bytes_per_frame = 2 * channels
    total_frames = max(1, (size - 44) // bytes_per_frame)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(2)
        file.setframerate(rate)
        written = 0
        while written < total_frames:
            count = min(frames_per_second, total_frames - written)
            file.writeframes(bytes(second[: count * bytes_per_frame]))
            written += count
    return path
