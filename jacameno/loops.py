"""The event loop of the long-running commands (`projections run` and `rebuild`, `worker`):
uvloop, as the server's under uvicorn, where it is installed (uvicorn[standard] brings it on
Linux); else asyncio's own. A projection process folding thousands of plays a second spent a
quarter of its time in asyncio's Python socket transports (docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform uvloop does not build on
        return asyncio.run(main)
    return uvloop.run(main)
