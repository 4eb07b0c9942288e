"""What a worker's child process runs for one job (jacameno.ai.slot): read the audio files the
parent fetched, analyse or master them, write what they make beside them, and answer with the
result as JSON values and the paths of the files made. Imported in the child only: it brings in
the numeric stack."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from jacameno.ai import audio
from jacameno.ai.analysis import analyse
from jacameno.ai.mastering import Target, master
from jacameno.ai.oversampling import limit_threads
from jacameno.ai.spec import Answer, Task


def run(task: Task, progress: Callable[[float], None]) -> Answer:
    # One torch thread per task process: the worker runs one process per concurrent job.
    limit_threads(1)
    source = audio.read(task.source)
    progress(0.2)
    folder = Path(task.folder)
    if task.kind == "analysis":
        analysis = analyse(source.samples, source.sample_rate)
        progress(0.9)
        peaks = folder / "waveform.json"
        peaks.write_text(json.dumps(analysis.waveform_json(), separators=(",", ":")))
        return Answer(analysis.to_json(), {"waveform": str(peaks)})
    params = task.params
    target = Target.named(
        params["preset"],
        loudness=params["target_lufs"] if params["preset"] == "custom" else None,
        ceiling=params["ceiling_dbtp"],
        tilt=params["tilt_db_per_octave"],
    )
    reference = None if task.reference is None else audio.read(task.reference)
    progress(0.3)
    mastered = master(
        source.samples,
        source.sample_rate,
        target,
        None if reference is None else reference.samples,
        None if reference is None else reference.sample_rate,
    )
    progress(0.9)
    output = folder / "mastered.wav"
    # 32-bit float keeps the limiter's ceiling exact (PCM would be dithered and rounded).
    audio.write(output, mastered.samples, mastered.sample_rate, subtype="FLOAT")
    return Answer(mastered.to_json(), {"mastered": str(output)})
