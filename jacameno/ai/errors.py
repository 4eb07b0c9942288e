"""The errors of jacameno.ai, one tree: every refusal of bad input is an `AudioError` whose
message says what was wrong, so a job can end `failed` with a reason a person can read."""

from __future__ import annotations


class AudioError(Exception):
    """Base of the package's errors: the input cannot be processed as asked."""


class UnreadableAudio(AudioError):
    """The bytes are not an audio file soundfile can decode (or the file is empty)."""


class InvalidAudio(AudioError):
    """Decoded samples that cannot be processed: wrong shape, no frames, NaN or infinite values,
    a sample rate or channel count outside what the package supports."""


class InvalidTarget(AudioError):
    """A mastering target that makes no sense (unknown preset, loudness or ceiling out of range)."""


class SilentAudio(AudioError):
    """The audio (or the reference) has no gated loudness: nothing to measure or master."""
