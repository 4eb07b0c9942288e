"""Tasks the slot tests run in a child process (jacameno.ai.slot): what a task may do."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any


def run(task: Any, progress: Callable[[float], None]) -> Any:
    kind, value = task
    if kind == "echo":
        progress(0.5)
        return {"echo": value, "pid": os.getpid()}
    if kind == "raise":
        raise ValueError(value)
    if kind == "sleep":
        progress(0.0)  # under way: a caller may wait for this rather than guess
        time.sleep(value)
        return "slept"
    if kind == "die":
        os._exit(3)
    raise AssertionError(kind)
