"""An AI analysis reaches the tracks that play its asset whichever comes first: the analysis, or
the clip that plays the asset (jacameno.documents.analysis, the `ai_results` projection). The
worker's side is its real contract: an `ai.analysis_completed` on the project's stream."""

from __future__ import annotations

import uuid
from typing import Any

from pycrdt import Array, Map

from domain.events import jobs as job_events
from domain.events import stream_name
from harness.waiting import eventually
from jacameno.settings import Settings
from tests.integration.collab.support import Server, YClient, serving

RESULT = {"tempo": {"bpm": 128.0, "confidence": 0.9}, "key": {"name": "A minor"}}
# Asset ids as the server makes them (uuid4)
KICK, BASS, VOX = (str(uuid.uuid4()) for _ in range(3))


def _track(track_id: str, *assets: str) -> Map[Any]:
    clips = Array([Map({"id": f"{track_id}-{n}", "asset_id": a}) for n, a in enumerate(assets)])
    return Map({"id": track_id, "name": track_id, "clips": clips})


def _analyses(client: YClient) -> dict[str, Any]:
    tracks = client.doc.get("tracks", type=Array).to_py() or []
    return {t["id"]: (t.get("analysis") or {}).get("tempo_bpm") for t in tracks}


async def _complete(server: Server, project: str, job: str, asset: str, bpm: float) -> int:
    result = RESULT | {"tempo": {"bpm": bpm, "confidence": 0.9}}
    event = job_events.job_completed("analysis", job, attempt=1, asset_id=asset, result=result)
    appended = await server.store.append(stream_name(project), [event])
    return appended.last_position


async def test_an_analysis_reaches_tracks_that_play_its_asset_before_or_after_it(
    settings: Settings,
) -> None:
    async with serving(settings) as server:
        alice = await server.user("alice")
        project = await server.project(alice)
        client = await server.client(project, alice)
        await client.sync()
        tracks = client.doc.get("tracks", type=Array)
        # A track that plays the asset before the analysis finishes takes it when it does.
        tracks.append(_track("drums", KICK))
        await eventually(lambda: len(client.echoes) == 1)
        await _complete(server, project, "job-kick", KICK, 120.0)
        await eventually(lambda: _analyses(client).get("drums") == 120.0)
        # An asset analysed while no clip plays it: the track that plays it later takes it,
        # whether the clip comes in a new track or is added to an existing one.
        await _complete(server, project, "job-bass", BASS, 96.0)
        tracks.append(_track("bass", BASS))
        await eventually(lambda: _analyses(client).get("bass") == 96.0)
        keys = tracks[0]
        assert isinstance(keys, Map)
        keys["clips"].append(Map({"id": "drums-bass", "asset_id": BASS}))
        tracks.append(_track("vocals", VOX))
        await eventually(lambda: len(client.echoes) >= 4)
        await eventually(lambda: _analyses(client) == {"drums": 96.0, "bass": 96.0, "vocals": None})
        # A newer analysis of an asset replaces the older one on every track that plays it.
        await _complete(server, project, "job-bass-2", BASS, 97.0)
        await eventually(lambda: _analyses(client) == {"drums": 97.0, "bass": 97.0, "vocals": None})
        # History names each of these edits as the AI service's.
        logged = await server.events(project, "doc.updated")
        assert sum(e.metadata["user_id"] == job_events.AI_USER_ID for e in logged) == 4
