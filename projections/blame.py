"""Who wrote what: a project's lyrics as runs of text, each with the user and the version that
wrote it, and who last set each mixer value of each track, read from the log alone
(docs/history.md, "Blame").

pycrdt does not expose the Yjs item ids (client id and clock) of what a document holds, so
blame replays the stream and watches each update as it is applied: the lyrics' change deltas
(positions in the merged document, so concurrent edits land where they merged) and the tracks'
map changes, each credited to the `user_id` in the metadata of the event that brought it.
Snapshots hold no authors, so a replay starts from a blame checkpoint
(projections/blame_checkpoints.py): the nearest stored one at or below the version, or version
0 where there is none; a replay that passes a checkpoint point saves one there."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from pycrdt import Array, ArrayEvent, Doc, Map, MapEvent, Subscription, Text, TextEvent

from crdt import MalformedUpdate, apply
from crdt.compare import state_vector
from crdt.update import delete_set, ends_of, structs
from domain.events import DOC_UPDATED, origin
from eventstore import EventStore, RecordedEvent
from projections.attribution import Attribution, Run
from projections.blame_checkpoints import (
    Author,
    Checkpoint,
    CheckpointError,
    Checkpoints,
    decode,
    encode,
)
from projections.replay import PAGE, VersionNotFound, updates
from sqldb import DatabaseError

logger = logging.getLogger(__name__)

# Updates a blame replays per second, about (the 100,000-update project: docs/benchmarks.md):
# how long a blame prepared in the background is said to take.
REPLAY_RATE = 2_700
BACKGROUND = 2  # blames a server prepares in the background at once, across projects

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
class _Watch:
    """A document being replayed, with the observers that credit each change to its author."""

    doc: Doc[Any] = field(default_factory=Doc)
    author: Author = field(default_factory=Author)
    lyrics: Attribution = field(default_factory=Attribution)
    # By track id: each followed value's (user, version, time) of its last setting.
    setters: dict[str, dict[str, Author]] = field(default_factory=dict)
    # pycrdt drops an observer whose subscription is no longer referenced
    subscriptions: list[Subscription] = field(default_factory=list)
    # By client id, the clock after the structs (or deletions) of the updates played: where
    # the state vector is behind, yrs holds an update, or part of one, pending (applied before
    # one it depends on), which a state (`get_update`) would leave out.
    ends: dict[int, int] = field(default_factory=dict)
    tracks: Array[Any] = field(init=False)

    def __post_init__(self) -> None:
        # Taken here: inside an observer the transaction is read-only, and getting a root
        # that was never got before would write to the document.
        self.tracks = self.doc.get(TRACKS, type=Array)
        self.subscriptions = [
            self.doc.get(LYRICS, type=Text).observe(self._typed),
            self.tracks.observe_deep(self._mixed),
        ]

    @classmethod
    def resumed(cls, checkpoint: Checkpoint) -> _Watch:
        """The replay a checkpoint holds, observed from there on; CheckpointError if its
        document does not apply or its lyrics are not the text its pieces spell."""
        doc: Doc[Any] = Doc()
        lyrics = doc.get(LYRICS, type=Text)  # got before the state, as a replay from 0 does
        doc.get(TRACKS, type=Array)
        try:
            apply(doc, checkpoint.state, "blame")
        except MalformedUpdate as exc:
            raise CheckpointError(f"the checkpoint's document does not apply: {exc}") from exc
        if str(lyrics).encode() != checkpoint.text():
            raise CheckpointError("the checkpoint's pieces do not spell its lyrics")
        attribution = Attribution.of(checkpoint.pieces)
        return cls(doc, checkpoint.at, attribution, checkpoint.setters)

    def capture(self, stream: str) -> Checkpoint | None:
        """This replay as a checkpoint; None where a state would not carry it on: yrs holds
        structs pending, or the lyrics are not what the pieces spell (a root of another
        type)."""
        have = state_vector(self.doc)
        if any(have.get(client, 0) < end for client, end in self.ends.items()):
            return None
        pieces = self.lyrics.pieces()
        found = Checkpoint(stream, self.author, self.doc.get_update(), pieces, self.setters)
        text = str(self.doc.get(LYRICS, type=Text)).encode()
        return found if text == found.text() else None

    def play(self, event: RecordedEvent) -> None:
        user_id, _, _ = origin(event.metadata)
        self.author = Author(user_id, event.version, event.recorded_at)
        apply(self.doc, event.data, "blame")
        for client, end in _ends(event.data):  # checked when a checkpoint is taken
            if end > self.ends.get(client, 0):
                self.ends[client] = end

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


def _ends(update: bytes) -> list[tuple[int, int]]:
    """Clocks the state vector reaches once the update has landed whole: the end of each
    client's structs (as yrs counts), and of each client's deletions where it carries no
    structs of that client. An update that does not read waits for ever (client -1): it
    applied, and no checkpoint will say what it left pending."""
    try:  # one read of the update (it was checked before it was logged)
        groups, at = structs(update)
        deletions = delete_set(update, at)
    except MalformedUpdate:
        return [(-1, 1)]
    with_structs = {client for client, _ in groups}
    deleted: dict[int, int] = {}
    for client, ranges in deletions:
        if client not in with_structs and ranges:
            end = max(clock + length for clock, length in ranges)
            deleted[client] = max(deleted.get(client, 0), end)
    return [*ends_of(groups).items(), *deleted.items()]


def _listed(event: Any, name: str) -> list[Any]:
    """An event's `delta` or `path` (pycrdt does not type them), or [] if it is not a list."""
    value = getattr(event, name, None)
    return value if isinstance(value, list) else []


def _track_id(track: Any) -> str | None:
    track_id = track.get("id") if isinstance(track, Map) else None
    return track_id if isinstance(track_id, str) and track_id else None


def _setting(value: Any, author: Author | None) -> Setting:
    if isinstance(value, Map | Array | Text):  # not a value blame follows: read it as JSON
        value = value.to_py()
    if author is None:
        return Setting(value, None, None, None)
    return Setting(value, author.user_id, author.version, author.recorded_at)


async def blame(
    store: EventStore,
    stream: str,
    version: int | None = None,
    checkpoints: Checkpoints | None = None,
) -> Blame:
    """Who wrote the lyrics and set the tracks' values of `stream` at `version` (None: the
    head); VersionNotFound beyond the head. Replays the stream from the nearest of
    `checkpoints` at or below the version (from version 0 without them), saving those it
    passes that the stream keeps."""
    upto = await _upto(store, stream, version)
    watch = await _replay(store, checkpoints, stream, upto, None)
    return await asyncio.to_thread(watch.blame)  # the runs of a long lyrics take a while


async def _upto(store: EventStore, stream: str, version: int | None) -> int:
    head = await store.stream_version(stream)
    upto = head if version is None else version
    if upto < 0:
        raise ValueError("a version is 0 or more")
    if upto > head:
        raise VersionNotFound(upto, head)
    return upto


async def _replay(
    store: EventStore,
    checkpoints: Checkpoints | None,
    stream: str,
    upto: int,
    kept: _Watch | None,
    cold: int | None = None,
) -> _Watch:
    """A watch at `upto`: `kept` (a replay at or below it) carried on, unless a checkpoint lies
    between the two; else the nearest checkpoint that reads; else a replay from version 0.
    _Cold instead if that would replay more than `cold` updates where no checkpoint lies beyond
    `upto` (a project's first blame, or the first since it grew by that much: once replayed,
    its checkpoints are there; below a newer checkpoint the gap is bounded by their spacing)."""
    stored: list[tuple[int, int]] = []
    if checkpoints is not None:
        try:
            stored = await checkpoints.listed(stream)
        except DatabaseError as exc:  # blame answers without them, only slower
            _passed_over(stream, None, exc)
    watch = kept
    floor = -1 if kept is None else kept.author.version
    for version, size in reversed(list(stored)):
        if floor < version <= upto and checkpoints is not None:
            resumed = await _resume(checkpoints, stream, version)
            if isinstance(resumed, _Watch):
                watch = resumed
                break
            if resumed == DROPPED:  # made again if this replay passes its point
                stored.remove((version, size))
    if watch is None:
        watch = _Watch()
    beyond = any(version > upto for version, _ in stored)
    if cold is not None and upto - watch.author.version > cold and not beyond:
        raise _Cold(upto - watch.author.version)
    await _advance(store, stream, watch, upto, checkpoints, stored)
    return watch


class _Cold(Exception):
    """A blame would replay `updates` updates, longer than the caller waits for."""

    def __init__(self, updates: int) -> None:
        super().__init__(f"{updates} updates to replay")
        self.updates = updates


class Preparing(Exception):
    """A blame is being prepared in the background (a replay that saves the project's
    checkpoints up to `upto`): ask again in about `retry_after` seconds."""

    def __init__(self, stream: str, upto: int, retry_after: int) -> None:
        super().__init__(f"blame of {stream} up to version {upto} is being prepared")
        self.upto = upto
        self.retry_after = retry_after


DROPPED: Final = "dropped"
PASSED: Final = "passed"


async def _resume(
    checkpoints: Checkpoints, stream: str, version: int
) -> _Watch | Literal["dropped", "passed"]:
    """The replay stored at `version`; else PASSED (logged) if it cannot be read now (none
    there, another format, the database failing), or DROPPED if it is damaged: deleted."""
    try:
        stored = await checkpoints.read(stream, version)
        if stored is None:
            return PASSED
    except DatabaseError as exc:
        _passed_over(stream, version, exc)
        return PASSED
    try:
        # off the event loop: decoding and applying a large document takes a while
        watch = await asyncio.to_thread(_decoded, stored, stream)
        if watch.author.version != version:
            raise CheckpointError(f"a checkpoint of version {watch.author.version} stored")
        return watch
    except CheckpointError as exc:
        _passed_over(stream, version, exc)
    try:
        await checkpoints.drop(stream, version)
    except DatabaseError as exc:
        _passed_over(stream, version, exc)
        return PASSED
    return DROPPED


def _decoded(stored: bytes, stream: str) -> _Watch:
    return _Watch.resumed(decode(stored, stream))


def _passed_over(stream: str, version: int | None, exc: Exception) -> None:
    logger.warning(
        "a blame checkpoint is passed over",
        extra={
            "action": "blame.checkpoint_unread",
            "stream": stream,
            "version": version,
            "error": repr(exc),
        },
    )


async def _advance(
    store: EventStore,
    stream: str,
    watch: _Watch,
    upto: int,
    checkpoints: Checkpoints | None = None,
    stored: list[tuple[int, int]] | None = None,
) -> None:
    """Replay the stream's events after the watch's version up to `upto`, stopping to save a
    checkpoint at each point the stream wants (`stored`: its checkpoints, version and size)."""
    done = watch.author.version
    stored = [] if stored is None else stored
    save = set() if checkpoints is None else checkpoints.wanted(stored, done, upto)
    while done < upto:  # a page at a time, so that memory holds one page of the log
        stop = min([upto, done + PAGE, *(point for point in save if point > done)])
        batch = await updates(store, stream, done, stop)
        if not batch:
            break
        # off the event loop, as replay's build is: applying and observing takes a while
        await asyncio.to_thread(_play, watch, batch)
        done = batch[-1].version
        if done in save and checkpoints is not None:
            size = await _save(checkpoints, stream, watch)
            if size is not None:  # by its size, the points still wanted may be fewer
                stored.append((done, size))
                save = checkpoints.wanted(stored, done, upto)


async def _save(checkpoints: Checkpoints, stream: str, watch: _Watch) -> int | None:
    """Save the watch as a checkpoint; its size, or None if none was made: a failure is
    logged, and the blame goes on without it."""
    version = watch.author.version
    try:
        stored = await asyncio.to_thread(_encoded, watch, stream)
        if stored is None:
            logger.info(
                "no blame checkpoint here: structs pending, or lyrics of another type",
                extra={"action": "blame.checkpoint_skipped", "stream": stream, "version": version},
            )
            return None
        await checkpoints.save(stream, version, stored)
    except Exception as exc:  # a cache of the log: losing one costs time, not an answer
        logger.warning(
            "a blame checkpoint could not be saved",
            extra={
                "action": "blame.checkpoint_failed",
                "stream": stream,
                "version": version,
                "error": repr(exc),
            },
        )
        return None
    return len(stored)


def _encoded(watch: _Watch, stream: str) -> bytes | None:
    found = watch.capture(stream)
    return None if found is None else encode(found)


class Blames:
    """Blame that keeps its replays: the last `capacity` projects' watched documents, so that a
    later blame of a project goes on from the version the last one reached (the updates since:
    milliseconds). A blame at an earlier version, or of a project not kept, starts from the
    nearest of `checkpoints` at or below its version (at most `blame_checkpoints.EVERY` updates
    to replay once the checkpoints are there), or from version 0 without one.

    With `background_above`, a blame that would replay more than that many updates where no
    checkpoint lies beyond its version (a project's first, or the first since the project grew
    by that much) is not waited for: it raises Preparing, and a task replays the project to
    that version in the background, saving the checkpoints that the blames after it start
    from; `close` stops those tasks."""

    def __init__(
        self,
        store: EventStore,
        checkpoints: Checkpoints | None = None,
        capacity: int = 4,
        *,
        background_above: int | None = None,
    ) -> None:
        self._store = store
        self._checkpoints = checkpoints
        self._capacity = capacity
        self._cold = background_above
        self._kept: OrderedDict[str, _Watch] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        # By stream, the background replay under way, its version and when it may be done;
        # at most `BACKGROUND` of them replay at once (each takes a core while it plays).
        self._preparing: dict[str, tuple[asyncio.Task[None], int, float]] = {}
        self._slots = asyncio.Semaphore(BACKGROUND)

    async def blame(self, stream: str, version: int | None = None) -> Blame:
        """The blame of `stream` at `version` (None: the head); VersionNotFound beyond the
        head; Preparing while it would replay for too long (see the class)."""
        upto = await _upto(self._store, stream, version)
        lock = self._locks.setdefault(stream, asyncio.Lock())
        async with lock:  # one replay of a stream at a time: they share its watch
            kept = self._kept.get(stream)
            usable = kept if kept is not None and kept.author.version <= upto else None
            try:
                watch = await _replay(
                    self._store, self._checkpoints, stream, upto, usable, self._cold
                )
                found = await asyncio.to_thread(watch.blame)
            except _Cold as cold:
                raise self._prepare(stream, upto, cold.updates) from None
            except BaseException:
                # cancelled or failed part way: the one kept may be half played, or still
                # playing in its thread
                if usable is not None:
                    self._kept.pop(stream, None)
                raise
            if watch is kept:
                self._kept.move_to_end(stream)
            elif kept is None or kept.author.version <= upto:
                self._keep(stream, watch)  # at or beyond the one kept: it replaces it
            return found

    def _prepare(self, stream: str, upto: int, updates: int) -> Preparing:
        """Start the background replay of `stream` to `upto` unless one is under way; what to
        tell the caller meanwhile."""
        now = time.monotonic()
        if stream not in self._preparing:
            task = asyncio.create_task(self._background(stream, upto))
            # about 2,700 updates/s (docs/history.md, "Blame")
            self._preparing[stream] = (task, upto, now + updates / REPLAY_RATE)
        _, target, ready = self._preparing[stream]
        return Preparing(stream, target, max(1, min(30, round(ready - now))))

    async def _background(self, stream: str, upto: int) -> None:
        try:
            async with self._slots:
                watch = await _replay(self._store, self._checkpoints, stream, upto, None)
            lock = self._locks.setdefault(stream, asyncio.Lock())
            async with lock:
                kept = self._kept.get(stream)
                if kept is None or kept.author.version <= upto:
                    self._keep(stream, watch)
        except Exception as exc:  # the next blame starts another (or answers the error)
            logger.warning(
                "a blame prepared in the background failed",
                extra={"action": "blame.prepare_failed", "stream": stream, "error": repr(exc)},
            )
        finally:
            self._preparing.pop(stream, None)

    async def prepared(self, stream: str) -> None:
        """Wait until no background replay of `stream` is under way."""
        found = self._preparing.get(stream)
        if found is not None:
            await asyncio.shield(found[0])

    async def close(self) -> None:
        """Stop the background replays (the checkpoints they saved stay)."""
        tasks = [task for task, _, _ in self._preparing.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _keep(self, stream: str, watch: _Watch) -> None:
        self._kept[stream] = watch
        self._kept.move_to_end(stream)
        while len(self._kept) > self._capacity:
            dropped, _ = self._kept.popitem(last=False)
            self._locks.pop(dropped, None)


def _play(watch: _Watch, batch: list[RecordedEvent]) -> None:
    for event in batch:
        if event.type == DOC_UPDATED:
            watch.play(event)
        else:  # not a document change, but the point blame stands at may be this event
            watch.author = Author(None, event.version, event.recorded_at)
