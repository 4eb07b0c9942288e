"""`analyse()` as a whole: every measure in its JSON, the waveform in audiowaveform's format,
the sample-level measures on signals with known answers, and what silence and mono give."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from jacameno.ai import analysis, audio, levels, testsignals, waveform
from jacameno.ai.errors import InvalidAudio

RATE = 44_100


def test_a_mix_is_analysed_into_every_measure() -> None:
    mix = testsignals.mix(12.0, RATE, seed=3)  # 150 BPM drums, chords in Eb minor
    result = analysis.analyse(mix, RATE)
    data = result.to_json()
    json.dumps(data)  # plain JSON values only
    assert data["duration"] == pytest.approx(12.0)
    assert (data["sample_rate"], data["channels"]) == (RATE, 2)
    assert data["tempo"]["bpm"] == pytest.approx(150.0, abs=0.2)
    assert data["tempo"]["confidence"] > 0.8
    assert [c["bpm"] for c in data["tempo"]["candidates"]] == pytest.approx(
        [300.0, 150.0, 75.0], abs=0.5
    )
    assert len(data["beats"]) == pytest.approx(12.0 * 150 / 60, abs=3)
    assert data["beats_per_bar"] == 4
    first = data["beats"].index(data["downbeats"][0])
    assert data["downbeats"] == data["beats"][first::4]
    assert first == 0  # the louder kick opens each bar, from the first beat
    assert "Eb minor" in (data["key"]["name"], data["key"]["second"])
    assert -13.0 < data["loudness"]["integrated"] < -7.0
    assert data["loudness"]["range"] >= 0.0
    assert data["true_peak"] > data["sample_peak"]
    assert 0.0 < data["stereo_correlation"] < 1.0
    assert data["crest_factor"] > 3.0
    # the mix goes over full scale (it is made hot, to be mastered): runs over it count
    assert data["sample_peak"] > 0.0
    assert data["clipping"] > 0


def test_waveform_peaks_come_at_several_resolutions_as_audiowaveform_writes_them() -> None:
    tone = testsignals.sine(100.0, -6.0, 1.0, RATE)
    result = analysis.analyse(tone, RATE)
    documents = result.waveform_json()
    assert [d["samples_per_pixel"] for d in documents] == list(waveform.RESOLUTIONS)
    for document in documents:
        assert document["version"] == 2
        assert document["channels"] == 1
        assert document["bits"] == 16
        assert document["sample_rate"] == RATE
        assert document["length"] == math.ceil(RATE / document["samples_per_pixel"])
        data = document["data"]
        assert len(data) == 2 * document["length"]
        assert all(low <= high for low, high in zip(data[::2], data[1::2], strict=True))
    coarse = documents[-1]["data"]  # every pixel spans several cycles: the full swing
    assert max(coarse) == pytest.approx(round(32767 * 10 ** (-6 / 20)), abs=30)
    assert min(coarse) == pytest.approx(-round(32767 * 10 ** (-6 / 20)), abs=30)
    with pytest.raises(ValueError, match="at least 1"):
        waveform.peaks(tone, RATE, (0,))


def test_sample_level_measures_have_their_known_answers() -> None:
    tone = testsignals.sine(997.0, -6.0, 2.0, RATE)
    assert levels.sample_peak(tone) == pytest.approx(-6.0, abs=0.01)
    assert levels.crest_factor(tone) == pytest.approx(3.01, abs=0.01)
    assert levels.stereo_correlation(tone) == pytest.approx(1.0)
    assert levels.stereo_correlation(tone * np.array([[1.0], [-1.0]])) == pytest.approx(-1.0)
    assert levels.stereo_correlation(tone[:1]) is None
    clipped = np.clip(testsignals.sine(50.0, 6.0, 1.0, RATE), -1.0, 1.0)
    # each half-cycle above full scale is one event, in each of the two channels
    assert levels.clipping_events(clipped) == 2 * 2 * 50
    assert levels.clipping_events(tone) == 0
    lone = np.zeros((1, 100))
    lone[0, 50] = 1.0
    assert levels.clipping_events(lone) == 0  # one full-scale sample is a peak, not clipping


def test_silence_has_no_level_no_tempo_and_no_key() -> None:
    data = analysis.analyse(np.zeros((2, RATE * 3)), RATE).to_json()
    assert data["loudness"] == {"integrated": None, "range": 0.0}
    assert (data["sample_peak"], data["true_peak"]) == (None, None)
    assert data["tempo"]["bpm"] is None
    assert data["beats"] == []
    assert data["key"] == {"name": None, "second": None, "confidence": 0.0}
    assert data["stereo_correlation"] == 0.0


def test_mono_audio_has_no_stereo_correlation() -> None:
    clicks = testsignals.clicks(120.0, 8.0, RATE)
    data = analysis.analyse(clicks.samples, RATE).to_json()
    assert data["channels"] == 1
    assert data["stereo_correlation"] is None
    assert data["tempo"]["bpm"] == pytest.approx(120.0, abs=0.2)


@pytest.mark.parametrize(
    ("samples", "rate", "message"),
    [
        (np.zeros((2, 0)), RATE, "no frames"),
        (np.zeros((2, 2, 10)), RATE, "shaped"),
        (np.zeros((9, 100)), RATE, "channels"),
        (np.array([[0.0, np.inf]]), RATE, "NaN or infinite"),
        (np.zeros((1, 100)), 4_000, "sample rate"),
        (np.zeros((1, 100)), 44_100.5, "integer"),
        ([["a", "b"]], RATE, "not numbers"),
    ],
)
def test_samples_that_cannot_be_analysed_are_refused(
    samples: object, rate: object, message: str
) -> None:
    with pytest.raises(InvalidAudio, match=message):
        analysis.analyse(samples, rate)  # type: ignore[arg-type]


def test_a_file_read_back_analyses_like_its_samples(tmp_path: Path) -> None:
    """The worker's path: the uploaded file decoded by audio.read, then analysed."""
    clicks = testsignals.clicks(100.0, 8.0, 48_000)
    path = tmp_path / "clicks.flac"
    audio.write(path, clicks.samples, 48_000, format="FLAC", subtype="PCM_24")
    decoded = audio.read(path)
    from_file = analysis.analyse(decoded.samples, decoded.sample_rate).to_json()
    direct = analysis.analyse(clicks.samples, 48_000).to_json()
    assert from_file["tempo"]["bpm"] == pytest.approx(direct["tempo"]["bpm"], abs=0.01)
    assert from_file["loudness"] == pytest.approx(direct["loudness"], abs=0.01)
    assert from_file["beats"] == pytest.approx(direct["beats"], abs=0.001)


@pytest.mark.parametrize("rate", [8_000, 96_000])
def test_low_and_high_sample_rates_are_analysed(rate: int) -> None:
    clicks = testsignals.clicks(120.0, 8.0, rate)
    data = analysis.analyse(clicks.samples, rate).to_json()
    assert data["tempo"]["bpm"] == pytest.approx(120.0, abs=0.2)
    assert data["sample_rate"] == rate


def test_a_tenth_of_a_second_has_peaks_but_no_loudness_or_tempo() -> None:
    blip = testsignals.sine(440.0, -6.0, 0.1, RATE)
    data = analysis.analyse(blip, RATE).to_json()
    assert data["loudness"]["integrated"] is None
    assert data["tempo"]["bpm"] is None
    assert data["sample_peak"] == pytest.approx(-6.0, abs=0.01)
