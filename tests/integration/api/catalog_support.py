"""What the catalog's API tests share: an asset in a project (its `asset.uploaded` appended to
the project's stream, the contract the storage side writes), a published track, plays, and
waiting until the catalog projection has folded the log."""

from __future__ import annotations

import uuid
from typing import Any

from domain.events import stream_name
from domain.events.assets import UploadedAsset, asset_uploaded
from tests.integration.api.support import Api, Member


async def asset(
    api: Api, project_id: str, who: Member, content_type: str = "audio/wav", duration: float = 3.5
) -> str:
    asset_id = str(uuid.uuid4())
    uploaded = UploadedAsset(
        asset_id=asset_id,
        project_id=project_id,
        user_id=who.id,
        sha256=uuid.uuid4().hex * 2,
        size=1000,
        content_type=content_type,
        format="WAV" if content_type.startswith("audio/") else "PNG",
        sample_rate=48000,
        channels=2,
        frames=int(48000 * duration),
        duration=duration,
        name="mixdown.wav",
    )
    await api.services.core.store.append(stream_name(project_id), [asset_uploaded(uploaded)])
    return asset_id


async def publish(
    api: Api, who: Member, project_id: str, asset_id: str, **fields: Any
) -> dict[str, Any]:
    body = {
        "project_id": project_id,
        "asset_id": asset_id,
        "title": "Night Drive",
        "artists": ["Ana", "Bo"],
        "genre": "Synthwave",
        "visibility": "public",
    } | fields
    response = await api.client.post("/api/tracks", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    track: dict[str, Any] = response.json()
    return track


async def settled(api: Api) -> None:
    """Return once the catalog projection has folded the whole log."""
    core = api.services.core
    await core.runner.wait_for(await core.store.head_position(), only=("catalog",))


async def play(
    api: Api, track_id: str, device: str | None = None, who: Member | None = None
) -> int:
    body = {} if device is None else {"device_id": device}
    headers = {} if who is None else who.headers
    response = await api.client.post(f"/api/tracks/{track_id}/plays", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return int(response.json()["position"])


async def track(api: Api, track_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/api/tracks/{track_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
