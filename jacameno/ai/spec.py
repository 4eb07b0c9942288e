"""One job's work as the worker hands it to its child process, and what comes back: plain data,
light to import (the worker's parent process never loads the numeric stack)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Task:
    """One job's work: its kind, the asset's audio file (and the reference's, for mastering to
    one), its parameters as jacameno.jobs.params checked them, and where to write outputs."""

    kind: str
    source: str
    folder: str
    params: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    result: dict[str, Any]
    outputs: dict[str, str]  # what was made ("waveform", "mastered") -> its file
