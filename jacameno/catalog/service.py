"""Commands on the streaming catalog: publish, update and unpublish tracks, playlists,
favorites, and plays. Each (but a play) decides on the read models and appends to its stream in
that stream's turn (jacameno.projects.locks: concurrent plays never make it conflict), and waits,
still in its turn, until the catalog projection has applied it: the next command on the stream
decides on it, and the answer and the next request see it.

A play only appends `track.played` and returns: whether it counts is the projection's decision
(projections/catalog_plays.py), never a counter updated here.

Rights: a project's owners and editors publish its assets and edit its tracks; its owners
unpublish them. Anyone (signed in, or anonymous with a device id) plays and reads a published
track, public or unlisted; only public ones are listed. A playlist is edited by its owner only;
a private one is seen by its owner only. Docs: docs/catalog.md."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from domain.events import catalog as ev
from domain.events import user_stream
from domain.roles import EDITOR, OWNER
from eventstore import NO_STREAM, EventStore, NewEvent
from jacameno import logs
from jacameno.catalog.errors import Conflict, Invalid, NotAllowed, NotFound
from jacameno.projects.locks import ProcessTurns, Turns
from jacameno.recent import Recent
from projections.assets import ASSETS, AssetsReadModel
from projections.catalog import CATALOG
from projections.catalog_reads import CatalogReadModel, PlaylistView, TrackView
from projections.projects import ProjectsReadModel
from projections.runner import ProjectionRunner

COMMAND_DEADLINE = 10.0  # seconds a command waits for its stream's turn before 409
MAX_PLAYLIST_TRACKS = 1000
PLAYABLE_SECONDS = 5.0
PLAYABLE_TRACKS = 10_000
_ONLY = (CATALOG,)


def _request_id() -> str | None:
    return logs.request_id.get()


class Catalog:
    def __init__(
        self,
        store: EventStore,
        runner: ProjectionRunner,
        reads: CatalogReadModel,
        projects: ProjectsReadModel,
        assets: AssetsReadModel,
        turns: Turns | None = None,
    ) -> None:
        self._store = store
        self._runner = runner
        self.reads = reads
        self._projects = projects
        self._assets = assets
        self._turns = turns or ProcessTurns()
        self._found: Recent[bool] = Recent(PLAYABLE_SECONDS, PLAYABLE_TRACKS)  # tracks found

    # -- tracks ---------------------------------------------------------------------------

    async def publish(
        self,
        actor: str,
        project_id: str,
        asset_id: str,
        *,
        title: str,
        artists: list[str],
        genre: str,
        visibility: str,
        description: str | None = None,
        cover_asset_id: str | None = None,
    ) -> TrackView:
        """A new track from one of the project's audio assets (owners and editors)."""
        role = await self._projects.role_of(actor, project_id)
        if role is None:
            raise NotFound("project")
        if role not in (OWNER, EDITOR):
            raise NotAllowed("your role does not allow publishing")
        # The asset may have been uploaded a moment ago: let its read model see the log's head.
        await self._runner.wait_for(await self._store.head_position(), only=(ASSETS,))
        found = await self._assets.asset(asset_id)
        if found is None or found.asset.project_id != project_id:
            raise Invalid("unknown_asset", "no such asset in this project")
        asset = found.asset
        await self._check_cover(project_id, cover_asset_id)
        track = ev.PublishedTrack(
            track_id=str(uuid.uuid4()),
            project_id=project_id,
            asset_id=asset_id,
            user_id=actor,
            title=title,
            artists=artists,
            genre=genre,
            visibility=visibility,
            description=description,
            cover_asset_id=cover_asset_id,
            duration=asset.duration,
            format=asset.format,
        )
        result = await self._store.append(
            ev.track_stream(track.track_id),
            [ev.track_published(track, request_id=_request_id())],
            expected_version=NO_STREAM,
        )
        await self._runner.wait_for(result.last_position, only=_ONLY)
        return await self.track(track.track_id)

    async def track(self, track_id: str) -> TrackView:
        view = await self.reads.track(track_id)
        if view is None:
            raise NotFound("track")
        return view

    async def update(self, actor: str, track_id: str, changes: dict[str, Any]) -> TrackView:
        """Replace some of a track's fields (owners and editors of its project)."""

        async def decide(track: TrackView) -> list[NewEvent]:
            await self._require(actor, track, OWNER, EDITOR)
            if "cover_asset_id" in changes:
                await self._check_cover(track.project_id, changes["cover_asset_id"])
            current = track.public()
            changed = {k: v for k, v in changes.items() if current.get(k) != v}
            return [self._event(ev.TRACK_UPDATED, changed, actor)] if changed else []

        await self._track_command(track_id, decide)
        return await self.track(track_id)

    async def unpublish(self, actor: str, track_id: str) -> None:
        """Take a track out of the catalog (owners of its project). Its plays stay counted."""

        async def decide(track: TrackView) -> list[NewEvent]:
            await self._require(actor, track, OWNER)
            return [self._event(ev.TRACK_UNPUBLISHED, {}, actor)]

        await self._track_command(track_id, decide)

    async def play(self, track_id: str, user_id: str | None, device_id: str | None) -> int:
        """Record that a listener started the track; the log position of the play. Counting
        it (or not) is the projection's. Whether the track is published is read from the read
        model at most every PLAYABLE_SECONDS per track (plays come in bursts on few tracks, and
        a read per play would queue behind the projections for the pool's connections); a play
        accepted in the moments after an unpublish is not counted by the fold."""
        if not await self._playable(track_id):
            raise NotFound("track")
        return (await self.play_many([(track_id, user_id, device_id)]))[0]

    async def play_many(self, plays: Sequence[tuple[str, str | None, str | None]]) -> list[int]:
        """Record several plays (track, user, device) at once, as `play` records each; their log
        positions, in order. Invalid (`unknown_tracks`) and nothing recorded if a track is not
        in the catalog. The plays of one track go in one append; the appends of several
        tracks are committed together (the store's group commit). If the store fails, some
        tracks' plays may be recorded and others not: sending the batch again counts none twice
        (a listener's plays of a track count once per 30 minutes)."""
        tracks = dict.fromkeys(track_id for track_id, _, _ in plays)
        missing = [track_id for track_id in tracks if not await self._playable(track_id)]
        if missing:
            raise Invalid("unknown_tracks", f"no such track: {', '.join(missing)}")
        request_id = _request_id()
        by_track: dict[str, list[int]] = {}
        made: dict[str, list[tuple[str, str | None]]] = {}  # (listener, actor) per track
        for n, (track_id, user_id, device_id) in enumerate(plays):
            by_track.setdefault(track_id, []).append(n)
            made.setdefault(track_id, []).append((ev.listener(user_id, device_id), user_id))
        events = {t: ev.track_plays(batch, request_id=request_id) for t, batch in made.items()}
        appends = [self._store.append(ev.track_stream(t), batch) for t, batch in events.items()]
        results = [await appends[0]] if len(appends) == 1 else await asyncio.gather(*appends)
        positions = [0] * len(plays)
        for indexes, result in zip(by_track.values(), results, strict=True):
            for n, position in zip(indexes, result.positions, strict=True):
                positions[n] = position
        return positions

    async def _playable(self, track_id: str) -> bool:
        """Whether the track is in the catalog, read at most every PLAYABLE_SECONDS."""
        now = time.monotonic()
        if self._found.get(track_id, now):
            return True
        if await self.reads.track(track_id) is None:
            return False
        self._found.put(track_id, True, now)
        return True

    # -- favorites ------------------------------------------------------------------------

    async def favorite(self, actor: str, track_id: str, *, on: bool) -> None:
        """Add (`on`) or remove a favorite; doing it twice changes nothing."""
        await self.track(track_id)
        stream = user_stream(actor)
        async with self._command_turn(stream):
            if await self.reads.is_favorite(actor, track_id) == on:
                return
            kind = ev.FAVORITE_ADDED if on else ev.FAVORITE_REMOVED
            result = await self._store.append(
                stream, [self._event(kind, {"track_id": track_id}, actor)]
            )
            await self._runner.wait_for(result.last_position, only=_ONLY)

    # -- playlists ------------------------------------------------------------------------

    async def create_playlist(self, actor: str, title: str, public: bool) -> PlaylistView:
        playlist_id = str(uuid.uuid4())
        data = {"playlist_id": playlist_id, "user_id": actor, "title": title, "public": public}
        result = await self._store.append(
            ev.playlist_stream(playlist_id),
            [self._event(ev.PLAYLIST_CREATED, data, actor)],
            expected_version=NO_STREAM,
        )
        await self._runner.wait_for(result.last_position, only=_ONLY)
        return await self.playlist(actor, playlist_id)

    async def playlist(self, viewer: str | None, playlist_id: str) -> PlaylistView:
        """A playlist as `viewer` (None: anonymous) may see it: public, or their own."""
        view = await self.reads.playlist(playlist_id)
        if view is None or (not view.public and view.user_id != viewer):
            raise NotFound("playlist")
        return view

    async def edit_playlist(
        self,
        actor: str,
        playlist_id: str,
        *,
        title: str | None = None,
        public: bool | None = None,
        order: list[str] | None = None,
    ) -> PlaylistView:
        """Rename, make public or private, and reorder (`order`: every track it holds, once)."""

        def decide(view: PlaylistView) -> list[NewEvent]:
            decided = []
            changes: dict[str, Any] = {}
            if title is not None and title != view.title:
                changes["title"] = title
            if public is not None and public != view.public:
                changes["public"] = public
            if changes:
                decided.append(self._event(ev.PLAYLIST_UPDATED, changes, actor))
            if order is not None and order != view.track_ids:
                if sorted(order) != sorted(view.track_ids):
                    raise Invalid(
                        "invalid_order", "the order must list each of the playlist's tracks once"
                    )
                decided.append(self._event(ev.PLAYLIST_REORDERED, {"track_ids": order}, actor))
            return decided

        await self._playlist_command(actor, playlist_id, decide)
        return await self.playlist(actor, playlist_id)

    async def delete_playlist(self, actor: str, playlist_id: str) -> None:
        await self._playlist_command(
            actor, playlist_id, lambda _: [self._event(ev.PLAYLIST_DELETED, {}, actor)]
        )

    async def add_to_playlist(
        self, actor: str, playlist_id: str, track_id: str, index: int | None
    ) -> PlaylistView:
        await self.track(track_id)

        def decide(view: PlaylistView) -> list[NewEvent]:
            if track_id in view.track_ids:
                raise Conflict("already_in_playlist", "the track is in the playlist already")
            if len(view.track_ids) >= MAX_PLAYLIST_TRACKS:
                raise Conflict("playlist_full", f"a playlist holds {MAX_PLAYLIST_TRACKS} tracks")
            data = {"track_id": track_id, "index": index}
            return [self._event(ev.PLAYLIST_TRACK_ADDED, data, actor)]

        await self._playlist_command(actor, playlist_id, decide)
        return await self.playlist(actor, playlist_id)

    async def remove_from_playlist(self, actor: str, playlist_id: str, track_id: str) -> None:
        def decide(view: PlaylistView) -> list[NewEvent]:
            if track_id not in view.track_ids:
                raise NotFound("track in this playlist")
            return [self._event(ev.PLAYLIST_TRACK_REMOVED, {"track_id": track_id}, actor)]

        await self._playlist_command(actor, playlist_id, decide)

    # -- the machinery ----------------------------------------------------------------------

    def _event(self, kind: str, data: dict[str, Any], actor: str) -> NewEvent:
        return ev.event(kind, data, actor=actor, request_id=_request_id())

    async def _require(self, actor: str, track: TrackView, *roles: str) -> None:
        if await self._projects.role_of(actor, track.project_id) not in roles:
            raise NotAllowed("your role in the track's project does not allow this")

    async def _check_cover(self, project_id: str, cover_asset_id: str | None) -> None:
        if cover_asset_id is None:
            return
        cover = await self._assets.asset(cover_asset_id)
        if cover is None or cover.asset.project_id != project_id:
            raise Invalid("unknown_cover", "no such cover asset in this project")
        if not cover.asset.content_type.startswith("image/"):
            raise Invalid("invalid_cover", "the cover asset is not an image")

    async def _track_command(
        self, track_id: str, decide: Callable[[TrackView], Awaitable[list[NewEvent]]]
    ) -> None:
        stream = ev.track_stream(track_id)
        async with self._command_turn(stream):
            new_events = await decide(await self.track(track_id))
            if new_events:
                result = await self._store.append(stream, new_events)
                await self._runner.wait_for(result.last_position, only=_ONLY)

    async def _playlist_command(
        self, actor: str, playlist_id: str, decide: Callable[[PlaylistView], list[NewEvent]]
    ) -> None:
        stream = ev.playlist_stream(playlist_id)
        async with self._command_turn(stream):
            view = await self.playlist(actor, playlist_id)
            if view.user_id != actor:
                raise NotAllowed("only the playlist's owner edits it")
            new_events = decide(view)
            if new_events:
                result = await self._store.append(stream, new_events)
                await self._runner.wait_for(result.last_position, only=_ONLY)

    @contextlib.asynccontextmanager
    async def _command_turn(self, stream: str) -> AsyncIterator[None]:
        """The stream's turn (Conflict, 409, if it does not come within COMMAND_DEADLINE)."""
        held = False
        try:
            async with self._turns.hold(stream, COMMAND_DEADLINE):
                held = True
                yield
        except TimeoutError as exc:
            if held:
                raise
            raise Conflict("concurrent_update", "the item is busy; try again") from exc
