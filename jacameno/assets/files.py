"""Assets as files for the AI worker (jacameno.ai.worker's `Inputs`): an asset's audio fetched from
storage into a scratch file, the waveform peaks an analysis made kept beside the audio (under the
content's hash: one per content), and a mastered file added to the project as a new asset of the
AI service user."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import BinaryIO

from domain.events.assets import asset_uploaded
from domain.events.jobs import AI_USER_ID
from eventstore import NewEvent
from jacameno.assets.service import AssetNotFound, Assets, blob_key, read_file
from projections.jobs import Job

WAVEFORM_TYPE = "application/json"


def waveform_key(sha256: str) -> str:
    """Where the waveform peaks of the content with this hash are kept."""
    return f"waveform/{sha256}.json"


def waveform_url(asset_id: str) -> str:
    return f"/api/assets/{asset_id}/waveform"


class AssetFiles:
    def __init__(self, assets: Assets) -> None:
        self._assets = assets

    async def _sha256(self, asset_id: str, project_id: str) -> str:
        view = await self._assets.reads.asset(asset_id)
        if view is None or view.asset.project_id != project_id:
            raise AssetNotFound(f"no asset {asset_id} in project {project_id}")
        return view.asset.sha256

    async def fetch(self, asset_id: str, project_id: str, path: Path) -> None:
        """Write the asset's bytes to `path`; AssetNotFound if the project has no such asset."""
        key = blob_key(await self._sha256(asset_id, project_id))
        file: BinaryIO = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in await self._assets.blobs.open_range(key):
                await asyncio.to_thread(file.write, chunk)
        finally:
            await asyncio.to_thread(file.close)

    async def keep_waveform(self, asset_id: str, project_id: str, path: Path) -> str:
        """Store the waveform peaks made for the asset; the URL path that serves them."""
        key = waveform_key(await self._sha256(asset_id, project_id))
        await self._assets.blobs.put(key, read_file(path), content_type=WAVEFORM_TYPE)
        return waveform_url(asset_id)

    async def store_mastered(self, job: Job, path: Path) -> tuple[str, NewEvent]:
        """Store a mastered file as a new asset of the job's project, the AI service user's:
        its id and the `asset.uploaded` that adds it, for the worker to append with the job's
        result (the asset exists only if the result is logged)."""
        source = await self._assets.reads.asset(job.asset_id)
        stem = "audio" if source is None else source.asset.name.rsplit(".", 1)[0]
        name = f"{stem} (mastered, {job.params.get('preset', 'custom')}).wav"
        asset = await self._assets.store(job.project_id, name, read_file(path), user_id=AI_USER_ID)
        return asset.asset_id, asset_uploaded(asset)
