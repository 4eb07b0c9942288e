"""Commands on audio assets: upload, delete, and finding one a caller may read.

An upload streams the body to a spool file in the data folder while hashing it (SHA-256) and
counting it against the maximum size, reads the audio header from that file, stores the bytes
under `sha256/<hex>` unless that content is stored already (the same content is stored once),
appends `asset.uploaded` to the project's stream and waits until the assets read model has it,
so the next request (a listing, a GET) finds it. Nothing is stored for a refused upload.

Rights: members read a project's assets; owners and editors upload and delete; viewers are
refused; to anyone else the project does not exist. Deleting an asset that a clip of the
project's document still uses is refused; the bytes themselves stay (another asset may have
the same content; docs/assets.md, "What deleting keeps")."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterable
from pathlib import Path
from typing import BinaryIO

from domain import document
from domain.events import stream_name
from domain.events.assets import UploadedAsset, asset_deleted, asset_uploaded
from domain.roles import EDITOR, OWNER
from eventstore import EventStore
from jacameno.assets.audio import AudioHeader, NotAudio, probe
from jacameno.storage import BlobStore, StorageUnavailable, read_file
from projections.assets import ASSETS, AssetsReadModel, AssetView
from projections.catalog_reads import CatalogReadModel
from projections.jobs import JOBS
from projections.projects import ProjectsReadModel
from projections.replay import state_at
from projections.runner import ProjectionRunner

logger = logging.getLogger(__name__)

# Received bytes are hashed and written to the spool file this many at once, in a worker thread.
SPOOL_BATCH_BYTES = 1024 * 1024
# When the store adopts the spool file, it is synced to the disk in the background each time
# this much more is written, so the disk writes while the rest is received.
SPOOL_SYNC_BYTES = 4 * SPOOL_BATCH_BYTES
MAX_NAME = 200

__all__ = [
    "AssetError",
    "AssetInUse",
    "AssetNotFound",
    "AssetPublished",
    "Assets",
    "NotAllowed",
    "NotAudio",
    "ProjectNotFound",
    "TooLarge",
    "blob_key",
    "read_file",
]


class AssetError(Exception):
    """Base of the errors of asset commands (NotAudio, from jacameno.assets.audio, is one too
    in spirit: a refused upload)."""


class ProjectNotFound(AssetError):
    """No such project, or the caller is no member of it."""


class AssetNotFound(AssetError):
    """No such asset, or the caller may not know it exists."""


class NotAllowed(AssetError):
    """The caller's role does not allow this."""


class TooLarge(AssetError):
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"an asset is at most {max_bytes} bytes")


class AssetInUse(AssetError):
    def __init__(self, clips: list[str]) -> None:
        self.clips = clips
        super().__init__(f"clips of the project use this asset: {', '.join(clips)}")


class AssetPublished(AssetError):
    def __init__(self, tracks: list[str]) -> None:
        self.tracks = tracks
        super().__init__(f"published tracks play this asset: {', '.join(tracks)}")


def blob_key(sha256: str) -> str:
    """Where the bytes of content with this SHA-256 are stored."""
    return f"sha256/{sha256}"


class Assets:
    def __init__(
        self,
        store: EventStore,
        blobs: BlobStore,
        runner: ProjectionRunner,
        reads: AssetsReadModel,
        projects: ProjectsReadModel,
        *,
        max_bytes: int,
        spool_dir: Path | None = None,
        catalog: CatalogReadModel | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self.blobs = blobs
        self._runner = runner
        self.reads = reads
        self._projects = projects
        self.max_bytes = max_bytes
        self._spool_dir = spool_dir

    async def role(self, actor: str, project_id: str) -> str:
        """The caller's role in the project; ProjectNotFound if they are no member."""
        role = await self._projects.role_of(actor, project_id)
        if role is None:
            raise ProjectNotFound(project_id)
        return role

    async def check_upload(self, actor: str, project_id: str) -> None:
        """ProjectNotFound or NotAllowed unless the caller may upload to the project: checked
        before the body is read."""
        if await self.role(actor, project_id) not in (OWNER, EDITOR):
            raise NotAllowed("viewers cannot upload assets")

    async def upload(
        self, actor: str, project_id: str, name: str, body: AsyncIterable[bytes]
    ) -> AssetView:
        """Store `body` as a new asset of the project and return it. ProjectNotFound,
        NotAllowed, TooLarge, NotAudio: nothing was stored. StorageError from the store."""
        await self.check_upload(actor, project_id)
        asset, position = await self.add(project_id, name, body, user_id=actor)
        # Answered once the asset is listed and its analysis queued.
        await self._runner.wait_for(position, only=(ASSETS, JOBS))
        view = await self.reads.asset(asset.asset_id)
        assert view is not None, "the projection applied the upload"
        return view

    async def add(
        self, project_id: str, name: str, body: AsyncIterable[bytes], *, user_id: str
    ) -> tuple[UploadedAsset, int]:
        """Store `body` as a new asset of the project uploaded by `user_id`, whose right to
        upload the caller checked: the asset and the log position of its `asset.uploaded`.
        TooLarge, NotAudio: nothing was stored."""
        asset = await self.store(project_id, name, body, user_id=user_id)
        result = await self._store.append(stream_name(project_id), [asset_uploaded(asset)])
        return asset, result.last_position

    async def store(
        self, project_id: str, name: str, body: AsyncIterable[bytes], *, user_id: str
    ) -> UploadedAsset:
        """Store `body`'s bytes as `add` does, without logging the asset: the caller appends its
        `asset.uploaded` (domain.events.assets) itself, beside events of its own (the AI
        worker's mastered file, in one append with the job's result). Bytes never logged stay
        in storage, named by no asset, as after a failed append (docs/assets.md)."""
        if self._spool_dir is not None:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._spool_dir, prefix="upload-") as folder:
            spool = Path(folder) / "body"
            sha256, size = await self._spool(body, spool)
            header: AudioHeader = await asyncio.to_thread(probe, spool)
            key = blob_key(sha256)
            if await self.blobs.stat(key) is None:
                # The spool was hashed as it was received: it becomes the blob as it is (on
                # local files a rename), and the spool folder's removal takes what remains.
                await self.blobs.put_file(key, spool, content_type=header.content_type)
                logger.info(
                    "asset stored",
                    extra={"action": "asset.stored", "project": project_id, "bytes": size},
                )
        asset = UploadedAsset(
            asset_id=str(uuid.uuid4()),
            project_id=project_id,
            user_id=user_id,
            sha256=sha256,
            size=size,
            content_type=header.content_type,
            format=header.format,
            sample_rate=header.sample_rate,
            channels=header.channels,
            frames=header.frames,
            duration=header.duration,
            name=name[:MAX_NAME],
        )
        return asset

    async def _spool(self, body: AsyncIterable[bytes], path: Path) -> tuple[str, int]:
        """Write `body` to `path`, hashing and counting it; TooLarge past `max_bytes`.

        The event loop only counts and gathers the received chunks (no copy); each batch of
        SPOOL_BATCH_BYTES is hashed and written in a worker thread while the next batch is
        received (hashlib and the file's write release the GIL), so at most two batches are in
        memory. When the store will adopt the file, a third thread syncs what is written every
        SPOOL_SYNC_BYTES, one sync at a time: the disk's flush overlaps the receiving instead of
        all of it waiting for the store's fsync at the end (docs/assets.md). The spool's disk
        failing is StorageUnavailable, as the store's own disk failing is."""
        try:
            return await self._write_spool(body, path)
        except OSError as exc:  # the spool's disk, as the store's own failures are
            raise StorageUnavailable(f"upload spool: {exc}") from exc

    async def _write_spool(self, body: AsyncIterable[bytes], path: Path) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        batch: list[bytes] = []
        batched = 0
        absorbed = unsynced = 0
        absorbing: asyncio.Future[None] | None = None
        syncing: asyncio.Future[None] | None = None
        file: BinaryIO = await asyncio.to_thread(path.open, "wb")
        descriptor = file.fileno()
        try:
            async for chunk in body:
                size += len(chunk)
                if size > self.max_bytes:
                    raise TooLarge(self.max_bytes)
                batch.append(chunk)
                batched += len(chunk)
                if batched >= SPOOL_BATCH_BYTES:
                    if absorbing is not None:
                        # Shielded: cancelled here, the finally still waits for the thread.
                        await asyncio.shield(absorbing)
                        unsynced += absorbed
                    absorbing = asyncio.ensure_future(
                        asyncio.to_thread(_absorb, digest, file, batch)
                    )
                    absorbed, batch, batched = batched, [], 0
                    idle = syncing is None or syncing.done()
                    if self.blobs.adopts_files and unsynced >= SPOOL_SYNC_BYTES and idle:
                        if syncing is not None:
                            syncing.result()  # a failed sync fails the upload
                        syncing = asyncio.ensure_future(asyncio.to_thread(os.fdatasync, descriptor))
                        unsynced = 0
            if absorbing is not None:
                await asyncio.shield(absorbing)
                absorbing = None
            await asyncio.to_thread(_absorb, digest, file, batch)
            if syncing is not None:
                await asyncio.shield(syncing)
                syncing = None
        finally:
            # Refused or cut short: the threads end before the close.
            for running in (absorbing, syncing):
                if running is not None:
                    await asyncio.gather(running, return_exceptions=True)
            await asyncio.to_thread(file.close)
        if size == 0:
            raise NotAudio("the body is empty")
        return digest.hexdigest(), size

    async def readable(self, actor: str, asset_id: str) -> AssetView:
        """The asset, if the caller is a member of its project; AssetNotFound otherwise."""
        view = await self.reads.asset(asset_id)
        if view is None or await self._projects.role_of(actor, view.asset.project_id) is None:
            raise AssetNotFound(asset_id)
        return view

    async def of_project(self, actor: str, project_id: str) -> list[AssetView]:
        await self.role(actor, project_id)
        return await self.reads.of_project(project_id)

    async def delete(self, actor: str, asset_id: str) -> None:
        """Remove the asset from its project. AssetNotFound, NotAllowed, AssetInUse while a
        clip of the project's document (as the log has it now) uses it, or AssetPublished while
        a published track plays it (the catalog read model says)."""
        view = await self.readable(actor, asset_id)
        project_id = view.asset.project_id
        if await self.role(actor, project_id) not in (OWNER, EDITOR):
            raise NotAllowed("viewers cannot delete assets")
        clips = await self._clips_using(project_id, asset_id)
        if clips:
            raise AssetInUse(clips)
        tracks = [] if self._catalog is None else await self._catalog.published_with(asset_id)
        if tracks:
            raise AssetPublished(tracks)
        result = await self._store.append(
            stream_name(project_id), [asset_deleted(asset_id, user_id=actor)]
        )
        await self._runner.wait_for(result.last_position, only=(ASSETS,))

    async def _clips_using(self, project_id: str, asset_id: str) -> list[str]:
        """The ids of the clips that use the asset in the project's document at the log's head
        (a replay: the read of the log the document read model would lag behind)."""
        stream = stream_name(project_id)
        state = await state_at(self._store, stream, await self._store.stream_version(stream))
        found = document.read(state.doc)
        clips: list[str] = []
        for track in found["tracks"]:
            if not isinstance(track, dict) or not isinstance(track.get("clips"), list):
                continue
            for clip in track["clips"]:
                if isinstance(clip, dict) and clip.get("asset_id") == asset_id:
                    clips.append(str(clip.get("id")))
        return clips


def _absorb(digest: hashlib._Hash, file: BinaryIO, chunks: list[bytes]) -> None:
    """Hash and write `chunks`, in order (in a worker thread: one batch at a time)."""
    for chunk in chunks:
        digest.update(chunk)
    file.writelines(chunks)
