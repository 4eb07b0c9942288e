"""The runnable examples under `examples/` work against a real server, as a newcomer runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from harness.server import ServerProcess
from tests.e2e.conftest import require_node_modules

EXAMPLES = Path(__file__).parents[2] / "examples"
TIMEOUT = 30.0


async def test_the_javascript_quickstart_edits_a_project_a_second_client_sees(
    server: ServerProcess,
) -> None:
    folder = EXAMPLES / "js"
    require_node_modules(folder)
    process = await asyncio.create_subprocess_exec(
        "node",
        "quickstart.mjs",
        server.url,
        cwd=folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["document"] == {
        "meta": {"bpm": 120},
        "tracks": [{"id": "drums", "name": "Drums", "kind": "audio", "volume_db": -6}],
    }
    assert len(result["project"]) == 36
