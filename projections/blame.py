"""Who wrote what: a project's lyrics as runs of text, each with the user and the version that
wrote it, and who last set each mixer value of each track, read from the log alone
(docs/history.md, "Blame").

pycrdt does not expose the Yjs item ids (client id and clock) of what a document holds, so
blame replays the stream from version 0 and watches each update as it is applied: the lyrics'
change deltas (positions in the merged document, so concurrent edits land where they merged)
and the tracks' map changes, each credited to the `user_id` in the metadata of the event that
brought it. The cost is a replay from the start, whatever the version: snapshots hold no
authors."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pycrdt import Array, ArrayEvent, Doc, Map, MapEvent, Subscription, Text, TextEvent

from crdt import apply
from domain.events import DOC_UPDATED, origin
from eventstore import EventStore, RecordedEvent
from projections.attribution import Attribution, Run
from projections.replay import PAGE, VersionNotFound, updates

LYRICS = "lyrics"
TRACKS = "tracks"
# The values of a track that blame follows: its mixer settings, and its name.
MIXER = ("name", "volume_db", "pan", "muted", "solo")


@dataclass(frozen=True, slots=True)
class Setting:
    """A track's value as it stands, and who set it last, in which version, when (all None
    when the log does not say: a value that came with an update blame could not follow)."""

    value: Any
    user_id: str | None
    version: int | None
    recorded_at: datetime | None

    def public(self) -> dict[str, Any]:
        stamp = None if self.recorded_at is None else self.recorded_at.isoformat()
        return {
            "value": self.value,
            "user_id": self.user_id,
            "version": self.version,
            "recorded_at": stamp,
        }


@dataclass(frozen=True, slots=True)
class Blame:
    """Authors at `version`: the lyrics' runs (they spell the lyrics, every character in exactly
    one run) and, by track id, each followed value the track holds."""

    version: int
    recorded_at: datetime | None
    runs: tuple[Run, ...]
    tracks: dict[str, dict[str, Setting]]

    def public(self, path: str) -> dict[str, Any] | None:
        """The answer for `path` (see `target`): the version, its time, the path, and the runs
        of the lyrics or the track's values; None if the track is not in the document."""
        stamp = None if self.recorded_at is None else self.recorded_at.isoformat()
        point = {"version": self.version, "recorded_at": stamp, "path": path}
        track_id = target(path)
        if track_id is None:
            return {**point, "runs": [run.public() for run in self.runs]}
        if track_id not in self.tracks:
            return None
        values = {key: setting.public() for key, setting in self.tracks[track_id].items()}
        return {**point, "track_id": track_id, "values": values}


def target(path: str) -> str | None:
    """What a blame path names: None for `lyrics`, the track id for `tracks/<id>`; ValueError
    for anything else."""
    if path == LYRICS:
        return None
    root, _, track_id = path.partition("/")
    if root != TRACKS or not track_id or "/" in track_id:
        raise ValueError("a blame path is lyrics or tracks/<track id>")
    return track_id


@dataclass(slots=True)
class _Author:
    """The event being applied: whom and when the changes it makes are credited to."""

    user_id: str | None = None
    version: int = 0
    recorded_at: datetime | None = None


@dataclass(slots=True)
class _Watch:
    """A document being replayed, with the observers that credit each change to its author."""

    doc: Doc[Any] = field(default_factory=Doc)
    author: _Author = field(default_factory=_Author)
    lyrics: Attribution = field(default_factory=Attribution)
    # By track id: each followed value's (user, version, time) of its last setting.
    setters: dict[str, dict[str, _Author]] = field(default_factory=dict)
    # pycrdt drops an observer whose subscription is no longer referenced
    subscriptions: list[Subscription] = field(default_factory=list)
    tracks: Array[Any] = field(init=False)

    def __post_init__(self) -> None:
        # Taken here: inside an observer the transaction is read-only, and getting a root
        # that was never got before would write to the document.
        self.tracks = self.doc.get(TRACKS, type=Array)
        self.subscriptions = [
            self.doc.get(LYRICS, type=Text).observe(self._typed),
            self.tracks.observe_deep(self._mixed),
        ]

    def play(self, event: RecordedEvent) -> None:
        user_id, _, _ = origin(event.metadata)
        self.author = _Author(user_id, event.version, event.recorded_at)
        apply(self.doc, event.data, "blame")

    def _typed(self, event: TextEvent) -> None:
        self.lyrics.change(_listed(event, "delta"), self.author.user_id, self.author.version)

    def _mixed(self, events: list[Any]) -> None:
        """Tracks inserted into the root array (path []), and keys set on a track (path [i],
        its index in the document after the update); deeper changes (clips) are not followed."""
        for event in events:
            path = _listed(event, "path")
            if isinstance(event, ArrayEvent) and not path:
                for op in _listed(event, "delta"):
                    for track in op.get("insert", ()) if isinstance(op, dict) else ():
                        self._added(track)
            elif isinstance(event, MapEvent) and len(path) == 1:
                index, keys = path[0], getattr(event, "keys", None)
                if isinstance(index, int) and 0 <= index < len(self.tracks):
                    track = self.tracks[index]
                    if isinstance(track, Map) and isinstance(keys, dict):
                        self._set(track, [k for k in keys if k in MIXER])

    def _added(self, track: Any) -> None:
        """A track added with its values counts as setting them; one added again under an id
        seen before starts afresh."""
        track_id = _track_id(track)
        if track_id is not None:
            self.setters[track_id] = {}
            self._set(track, [k for k in MIXER if k in track])

    def _set(self, track: Map[Any], keys: list[str]) -> None:
        track_id = _track_id(track)
        if track_id is not None:
            self.setters.setdefault(track_id, {}).update(dict.fromkeys(keys, self.author))

    def blame(self) -> Blame:
        tracks: dict[str, dict[str, Setting]] = {}
        for track in self.tracks:
            track_id = _track_id(track)
            if track_id is None or track_id in tracks:
                continue
            setters = self.setters.get(track_id, {})
            tracks[track_id] = {
                key: _setting(track[key], setters.get(key)) for key in MIXER if key in track
            }
        at = self.author
        return Blame(at.version, at.recorded_at, tuple(self.lyrics.runs()), tracks)


def _listed(event: Any, name: str) -> list[Any]:
    """An event's `delta` or `path` (pycrdt does not type them), or [] if it is not a list."""
    value = getattr(event, name, None)
    return value if isinstance(value, list) else []


def _track_id(track: Any) -> str | None:
    track_id = track.get("id") if isinstance(track, Map) else None
    return track_id if isinstance(track_id, str) and track_id else None


def _setting(value: Any, author: _Author | None) -> Setting:
    if isinstance(value, Map | Array | Text):  # not a value blame follows: read it as JSON
        value = value.to_py()
    if author is None:
        return Setting(value, None, None, None)
    return Setting(value, author.user_id, author.version, author.recorded_at)


async def blame(store: EventStore, stream: str, version: int | None = None) -> Blame:
    """Who wrote the lyrics and set the tracks' values of `stream` at `version` (None: the
    head); VersionNotFound beyond the head. Reads the stream from version 1."""
    upto = await _upto(store, stream, version)
    watch = _Watch()
    await _advance(store, stream, watch, upto)
    return watch.blame()


async def _upto(store: EventStore, stream: str, version: int | None) -> int:
    head = await store.stream_version(stream)
    upto = head if version is None else version
    if upto < 0:
        raise ValueError("a version is 0 or more")
    if upto > head:
        raise VersionNotFound(upto, head)
    return upto


async def _advance(store: EventStore, stream: str, watch: _Watch, upto: int) -> None:
    """Replay the stream's events after the watch's version up to `upto`."""
    done = watch.author.version
    while done < upto:  # a page at a time, so that memory holds one page of the log
        batch = await updates(store, stream, done, min(upto, done + PAGE))
        if not batch:
            break
        # off the event loop, as replay's build is: applying and observing takes a while
        await asyncio.to_thread(_play, watch, batch)
        done = batch[-1].version


class Blames:
    """Blame that keeps its replays: the last `capacity` projects' watched documents, so that a
    later blame of a project goes on from the version the last one reached instead of from
    version 1 (a replay of 100,000 updates takes about 37 s; the updates since the last blame,
    milliseconds). A blame at an earlier version than the one kept replays from version 1."""

    def __init__(self, store: EventStore, capacity: int = 4) -> None:
        self._store = store
        self._capacity = capacity
        self._kept: OrderedDict[str, _Watch] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def blame(self, stream: str, version: int | None = None) -> Blame:
        upto = await _upto(self._store, stream, version)
        lock = self._locks.setdefault(stream, asyncio.Lock())
        async with lock:  # one replay of a stream at a time: they share its watch
            watch = self._kept.get(stream)
            if watch is None or watch.author.version > upto:
                fresh = _Watch()
                await _advance(self._store, stream, fresh, upto)
                if watch is None:
                    self._keep(stream, fresh)
                return fresh.blame()
            self._kept.move_to_end(stream)
            await _advance(self._store, stream, watch, upto)
            return watch.blame()

    def _keep(self, stream: str, watch: _Watch) -> None:
        self._kept[stream] = watch
        while len(self._kept) > self._capacity:
            dropped, _ = self._kept.popitem(last=False)
            self._locks.pop(dropped, None)


def _play(watch: _Watch, batch: list[RecordedEvent]) -> None:
    for event in batch:
        if event.type == DOC_UPDATED:
            watch.play(event)
        else:  # not a document change, but the point blame stands at may be this event
            watch.author = _Author(None, event.version, event.recorded_at)
