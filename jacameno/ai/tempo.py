"""Tempo, beats and downbeats from the onset envelope (jacameno.ai.onsets).

1. The metrical level: the envelope's autocorrelation, averaged over 6 s windows, gives the
   candidate beat periods between 40 and 240 BPM. Start from the strongest (mildly weighted
   towards 120 BPM), then step to a faster level (a half or a third of the period) as long as
   it is at least 88 % as strong: an even click is counted at its own rate, a kick under weaker
   hi-hats at the kick's.
2. The local period, per window, near that level (within 45 %, so a tempo change is followed and
   an octave jump is not), smoothed.
3. Beats by dynamic programming (onset strength at each beat, minus a penalty for intervals that
   stray from the local period), each refined to its onset peak.
4. Tempo per steady segment by a least-squares line through its beat times: the slope is far
   more precise than any frame grid.
5. Downbeats: the bar length (3 or 4) and phase whose beats are most accented."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from jacameno.ai.onsets import Envelope, refine

MIN_BPM, MAX_BPM = 40.0, 240.0
_WINDOW_SECONDS, _WINDOW_HOP_SECONDS = 6.0, 0.5
_LEVEL_SHARE = 0.88  # a faster level counts when it is this strong relative to the slower
_PRIOR_CENTRE_BPM, _PRIOR_OCTAVES = 120.0, 1.5
_LOCAL_REACH = 1.45  # how far the local period may stray from the chosen level
_TIGHTNESS = 100.0  # penalty weight for a beat interval off the local period (log-squared)
_CHANGE = 0.04  # relative change of the beat interval that starts a new tempo segment


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of steady tempo: from `start` seconds, `bpm`, over `beats` beats."""

    start: float
    bpm: float
    beats: int


@dataclass(frozen=True, slots=True)
class Rhythm:
    """What the tempo tracker found; `bpm` is the tempo of the longest steady segment."""

    bpm: float
    confidence: float
    candidates: list[tuple[float, float]]  # (bpm, relative strength): the octave alternatives
    beats: list[float]  # seconds
    downbeats: list[float]  # seconds
    beats_per_bar: int
    segments: list[Segment]


def _autocorrelation(
    values: npt.NDArray[np.float64], window: int, hop: int
) -> npt.NDArray[np.float64]:
    """Autocorrelation of each window (rows), lags 0..window-1, each normalised at lag 0."""
    if values.shape[0] <= window:
        starts = np.array([0])
        window = values.shape[0]
    else:
        starts = np.arange(0, values.shape[0] - window + 1, hop)
    frames = np.stack([values[s : s + window] for s in starts])
    frames = frames - frames.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(frames, n=2 * window, axis=1)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), axis=1)[:, :window]
    acf /= np.maximum(acf[:, :1], 1e-12)
    return np.asarray(acf)


def _peaks(acf: npt.NDArray[np.float64], low: int, high: int) -> list[tuple[float, float]]:
    """Local maxima of acf in [low, high], as (fractional lag, height)."""
    found = []
    for lag in range(max(low, 1), min(high, acf.shape[0] - 2) + 1):
        if acf[lag] > 0 and acf[lag] >= acf[lag - 1] and acf[lag] > acf[lag + 1]:
            left, centre, right = acf[lag - 1], acf[lag], acf[lag + 1]
            curvature = left - 2 * centre + right
            shift = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
            found.append((lag + shift, float(centre)))
    return found


def _prior(bpm: float) -> float:
    return float(np.exp(-0.5 * (np.log2(bpm / _PRIOR_CENTRE_BPM) / _PRIOR_OCTAVES) ** 2))


def _level(acf: npt.NDArray[np.float64], fps: float) -> tuple[float, list[tuple[float, float]]]:
    """The beat period in frames, and the octave candidates (bpm, relative strength)."""
    low, high = int(60.0 * fps / MAX_BPM), int(np.ceil(60.0 * fps / MIN_BPM))
    peaks = _peaks(acf, low, high)
    if not peaks:
        return 60.0 * fps / _PRIOR_CENTRE_BPM, []
    period, height = max(peaks, key=lambda p: p[1] * _prior(60.0 * fps / p[0]))
    # down the metrical levels while the faster pulse is about as strong: an even pulse keeps
    # its rate, a strong-weak alternation (kick and hat) stops at the strong one
    while True:
        faster = [
            (lag, h)
            for lag, h in peaks
            for divisor in (2, 3)
            if abs(lag * divisor - period) <= max(2.0, 0.03 * period) and h >= _LEVEL_SHARE * height
        ]
        if not faster:
            break
        period, height = min(faster)
    candidates = []
    for factor in (2.0, 1.0, 0.5):
        lag = period / factor
        bpm = 60.0 * fps / lag
        if 20.0 <= bpm <= 400.0 and lag < acf.shape[0] - 1:
            height = float(np.interp(lag, np.arange(acf.shape[0]), acf))
            candidates.append((bpm, max(height, 0.0)))
    top = max((h for _, h in candidates), default=0.0) or 1.0
    return period, [(round(bpm, 2), round(h / top, 3)) for bpm, h in candidates]


def _local_periods(
    acfs: npt.NDArray[np.float64], level: float, hop: int, frames: int, window: int
) -> npt.NDArray[np.float64]:
    """The beat period near `level` for every frame (windows' periods, smoothed, interpolated)."""
    low, high = int(level / _LOCAL_REACH), int(np.ceil(level * _LOCAL_REACH))
    periods = []
    for acf in acfs:
        near = _peaks(acf, low, high)
        periods.append(max(near, key=lambda p: p[1])[0] if near else level)
    smoothed = ndimage.median_filter(np.array(periods), size=3, mode="nearest")
    centres = np.arange(len(periods)) * hop + window / 2
    return np.asarray(np.interp(np.arange(frames), centres, smoothed), dtype=np.float64)


def _track(values: npt.NDArray[np.float64], periods: npt.NDArray[np.float64]) -> list[int]:
    """Beat frames by dynamic programming over the envelope (Ellis's tracker, with a period that
    may change along the way). Frames are filled in blocks shorter than the shortest allowed
    interval, so every block reads only scores already final."""
    count = values.shape[0]
    score = values.copy()
    previous = np.full(count, -1)
    shortest = max(1, int(periods.min() / _LOCAL_REACH))
    for start in range(0, count, shortest):
        stop = min(count, start + shortest)
        frames = np.arange(start, stop)
        period = periods[frames]
        reach = np.arange(1, int(np.ceil(periods.max() * 2)) + 1)
        candidates = frames[:, None] - reach[None, :]
        allowed = (reach[None, :] >= period[:, None] / 2) & (reach[None, :] <= 2 * period[:, None])
        allowed &= candidates >= 0
        penalty = -_TIGHTNESS * np.log(reach[None, :] / period[:, None]) ** 2
        totals = np.where(allowed, score[np.maximum(candidates, 0)] + penalty, -np.inf)
        best = np.argmax(totals, axis=1)
        best_total = totals[np.arange(frames.shape[0]), best]
        has = np.isfinite(best_total)
        score[frames[has]] += best_total[has]
        previous[frames[has]] = candidates[np.arange(frames.shape[0]), best][has]
    tail = int(periods[-1])
    frame = count - tail + int(np.argmax(score[count - tail :]))
    beats = [frame]
    while previous[frame] >= 0:
        frame = int(previous[frame])
        beats.append(frame)
    return beats[::-1]


def _trimmed(beats: list[int], values: npt.NDArray[np.float64]) -> list[int]:
    """Without the leading and trailing beats that fall where nothing is playing."""
    strengths = np.array([values[max(0, b - 3) : b + 4].max() for b in beats])
    floor = 0.3 * float(np.median(strengths))
    keep = np.flatnonzero(strengths > floor)
    return beats[keep[0] : keep[-1] + 1] if keep.size else []


def _segments(times: npt.NDArray[np.float64]) -> list[Segment]:
    """Split beat times where the interval changes, and fit each part with a line."""
    if times.shape[0] < 3:
        return []
    intervals = np.diff(times)
    smooth = ndimage.median_filter(intervals, size=5, mode="nearest")
    cuts = [0]
    for i in range(1, intervals.shape[0]):
        if abs(smooth[i] - smooth[cuts[-1]]) > _CHANGE * smooth[cuts[-1]]:
            cuts.append(i)
    cuts.append(intervals.shape[0])
    segments = []
    for first, last in itertools.pairwise(cuts):
        part = times[first : last + 1]
        if part.shape[0] >= 3:
            slope = np.polyfit(np.arange(part.shape[0]), part, 1)[0]
            segments.append(Segment(float(part[0]), 60.0 / float(slope), int(part.shape[0])))
    return segments


def _downbeats(decibels: npt.NDArray[np.float64], lows: npt.NDArray[np.float64]) -> tuple[int, int]:
    """(beats per bar, phase of the first downbeat) by the most accented beats: the level at
    each beat (dB) plus its low-band onset strength (a kick's weight); 3 wins only when clearly
    more accented than 4."""
    accent = decibels + lows
    best: dict[int, tuple[float, int]] = {}
    for meter in (4, 3):
        if accent.shape[0] < 2 * meter:
            continue
        for phase in range(meter):
            on = accent[phase::meter]
            off = np.delete(accent, np.arange(phase, accent.shape[0], meter))
            lift = float(on.mean() - off.mean())
            if meter not in best or lift > best[meter][0]:
                best[meter] = (lift, phase)
    if not best:
        return 4, 0
    if 3 in best and 4 in best and best[3][0] > 1.2 * max(best[4][0], 1e-9):
        return 3, best[3][1]
    meter = 4 if 4 in best else 3
    return meter, best[meter][1]


def _confidence(
    times: npt.NDArray[np.float64], strengths: npt.NDArray[np.float64], segments: list[Segment]
) -> float:
    """The share of beats that fall on an onset (a peak a standard deviation above the mean),
    times how steady the intervals are around their segment's tempo (0 when the median
    interval strays by a tenth of a beat)."""
    on_onsets = float(np.mean(strengths > 1.0))
    starts = np.array([s.start for s in segments])
    which = np.clip(np.searchsorted(starts, times[1:], side="right") - 1, 0, len(segments) - 1)
    beat = 60.0 / np.array([s.bpm for s in segments])[which]
    stray = float(np.median(np.abs(np.diff(times) - beat) / beat))
    return round(on_onsets * float(np.clip(1.0 - 10.0 * stray, 0.0, 1.0)), 3)


def rhythm(env: Envelope) -> Rhythm:
    """Tempo, beats and downbeats of an onset envelope."""
    values, fps = env.values, env.fps
    window, hop = int(_WINDOW_SECONDS * fps), int(_WINDOW_HOP_SECONDS * fps)
    if values.shape[0] < int(2 * 60.0 * fps / MIN_BPM):
        return Rhythm(0.0, 0.0, [], [], [], 4, [])
    acfs = _autocorrelation(values, window, hop)
    level, candidates = _level(acfs.mean(axis=0), fps)
    periods = _local_periods(acfs, level, hop, values.shape[0], acfs.shape[1])
    frames = _trimmed(_track(values, periods), values)
    refined = [refine(env, b) for b in frames]
    times = np.array([env.time(f) for f, _ in refined])
    strengths = np.array([s for _, s in refined])
    segments = _segments(times)
    if not segments:
        return Rhythm(0.0, 0.0, candidates, times.tolist(), [], 4, [])
    main = max(segments, key=lambda s: s.beats)
    accents = np.array([env.decibels[max(0, b - 2) : b + 5].max() for b in frames])
    lows = np.array([env.lows[max(0, b - 3) : b + 4].max() for b in frames])
    meter, phase = _downbeats(accents, lows)
    return Rhythm(
        bpm=main.bpm,
        confidence=_confidence(times, strengths, segments),
        candidates=candidates,
        beats=times.tolist(),
        downbeats=times[phase::meter].tolist(),
        beats_per_bar=meter,
        segments=segments,
    )
