"""The event loop's lag is exported at /metrics: a stall of the loop shows in the histogram; so
are the garbage collector's pauses."""

from __future__ import annotations

import gc
import re
import time

from harness.waiting import wait_until
from tests.integration.collab.support import Server

COUNT = re.compile(r"^jacameno_event_loop_lag_seconds_count (\S+)$", re.MULTILINE)
FULL_COLLECTIONS = re.compile(
    r'^jacameno_gc_pause_seconds_count\{generation="2"\} (\S+)$', re.MULTILINE
)
OVER_100_MS = re.compile(
    r'^jacameno_event_loop_lag_seconds_bucket\{le="0.1"\} (\S+)$', re.MULTILINE
)


async def _metric(server: Server, pattern: re.Pattern[str]) -> float:
    text = (await server.http.get("/metrics")).text
    found = pattern.search(text)
    assert found is not None, text
    return float(found.group(1))


async def test_the_event_loops_lag_is_a_metric(server: Server) -> None:
    async def ticked() -> bool:
        return await _metric(server, COUNT) >= 2

    await wait_until(ticked, "the loop's ticker was observed")
    before = await _metric(server, COUNT) - await _metric(server, OVER_100_MS)
    # A stall, not a wait: the server runs in this event loop, which this holds for 0.3 s.
    time.sleep(0.3)  # noqa: ASYNC251

    async def stalled() -> bool:
        return await _metric(server, COUNT) - await _metric(server, OVER_100_MS) > before

    await wait_until(stalled, "a tick later than 0.1 s was observed")


async def test_the_garbage_collectors_pauses_are_a_metric(server: Server) -> None:
    before = await _metric(server, FULL_COLLECTIONS)
    gc.collect()  # the server's process is this one (which may collect on its own too)
    assert await _metric(server, FULL_COLLECTIONS) >= before + 1
