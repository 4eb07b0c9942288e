"""A served node leaves the heap it started with out of the garbage collector's work
(jacameno.server.freeze_heap): a full collection then walks only what came after, instead of
holding the event loop for tens of milliseconds (docs/benchmarks.md)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx

from harness.server import ServerProcess

FROZEN = re.compile(r"^jacameno_gc_frozen_objects (\S+)$", re.MULTILINE)


async def test_a_served_node_freezes_the_heap_it_started_with(
    database_url: str, tmp_path: Path
) -> None:
    server = ServerProcess(
        database_url,
        data_dir=tmp_path / "data",
        jwt_secret="e2e-" + uuid.uuid4().hex,
        log=tmp_path / "server.log",
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            text = (await http.get("/metrics")).text
        found = FROZEN.search(text)
        assert found is not None, text
        assert float(found[1]) > 50_000  # a started server: its modules, its app, its services
    finally:
        await server.stop()
