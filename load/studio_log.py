"""A studio's log for the projection benchmark: real Yjs updates as collaborators make them, in
sessions, many projects at once, written into an event store.

Each project gets a history made with pycrdt (one Doc per session, loaded from the state the
previous session left, so each session is a new Yjs client): `project.created` and
`member.added` for its owner and editors, then sessions, each a `session.joined`, its document
updates and a `session.left`. Most updates are keystrokes in the lyrics (at most `MAX_LYRICS`
characters: when they are full, a stretch is cut instead); the others move faders and clips,
mute and solo, add tracks, clips, comments and markers (each bounded as a song's are: `MAX_*`),
resolve comments, set the tempo. The
projects' sessions are interleaved as a studio's would be: at most `active` sessions run at once,
a finished one hands its slot to the next waiting session, and a project's next session waits
behind every other project's. Snapshots are taken every `SNAPSHOT_EVERY` updates of a project,
as the server takes them.

Generating 1,000,000 updates takes about ten minutes (`--engine yjs`); the result is cached in a
file keyed by its sizes and seed (`cached`), so that reruns skip it."""

from __future__ import annotations

import asyncio
import json
import pickle
import random
import subprocess
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map, Text, TransactionEvent

from domain import events
from domain.roles import EDITOR, OWNER
from eventstore import EventStore, Limits, NewEvent

GENERATOR = 4  # bump when the generated log changes: older cache files are not reused
KEPT = Limits()  # the snapshots a store keeps by default (eventstore.Limits.snapshots_kept)
SNAPSHOT_EVERY = 1000  # document updates of a project between snapshots (the server's default)
NODE = "bench"
STUDIO_EDITS = Path(__file__).parent / "js" / "studio_edits.mjs"  # the yjs engine's edits
MAX_TRACKS = 16
# Characters in the lyrics at most: a song's lyrics, with drafts. Keystrokes outnumber deletions,
# so without a bound a million updates typed 500,000 characters, which no song has (and yrs's text
# events walk the text from its start: a fold of that project took hours).
MAX_LYRICS = 8000
# The same for the arrays, which grew without end too (50,000 comments and 40,000 clips after a
# million updates): clips per track (when full, one is deleted instead of added), comments and
# markers (when full, the oldest is deleted before one is added).
MAX_CLIPS = 200
MAX_COMMENTS = 1000
MAX_MARKERS = 100

# Event kinds in the compact form (cached as integers).
DOC, JOINED, LEFT, CREATED, MEMBER = range(5)


@dataclass(frozen=True, slots=True)
class Sizes:
    updates: int  # doc.updated events in all
    projects: int
    seed: int = 1
    active: int = 32  # sessions at once
    # What makes the document edits: "pycrdt", or "yjs" (Node's yjs, load/js: a million updates
    # of one project in minutes where pycrdt's text inserts took hours)
    engine: str = "pycrdt"

    def __post_init__(self) -> None:
        if self.projects < 1 or self.updates < self.projects or self.active < 1:
            raise ValueError("need projects >= 1, updates >= projects and active >= 1")
        if self.engine not in ("pycrdt", "yjs"):
            raise ValueError("engine: pycrdt or yjs")


@dataclass(slots=True)
class StudioLog:
    """Events in log order as (project index, kind, user index, data), and the snapshots as
    (project index, stream version, state)."""

    sizes: Sizes
    projects: list[str]
    users: list[str]
    events: list[tuple[int, int, int, bytes]]
    snapshots: list[tuple[int, int, bytes]]

    def count(self, kind: int) -> int:
        return sum(1 for e in self.events if e[1] == kind)


class _Session:
    """One collaborator's session on a project document: a new Yjs client with the state so far."""

    def __init__(self, state: bytes, rng: random.Random) -> None:
        self.doc: Doc[Any] = Doc()
        if state:
            self.doc.apply_update(state)
        self.rng = rng
        self.meta = self.doc.get("meta", type=Map)
        self.tracks = self.doc.get("tracks", type=Array)
        self.lyrics = self.doc.get("lyrics", type=Text)
        self.comments = self.doc.get("comments", type=Array)
        self.markers = self.doc.get("markers", type=Array)
        self.cursor = len(self.lyrics)
        self._captured: list[bytes] = []
        self.doc.observe(self._capture)

    def _capture(self, event: TransactionEvent) -> None:
        self._captured.append(event.update)

    def edit(self) -> bytes:
        """One edit, as one transaction; its update (an edit that finds nothing to change, such
        as moving a clip of a track without clips, gives way to another)."""
        while not self._captured:
            with self.doc.transaction():
                self._one()
        update = self._captured.pop()
        self._captured.clear()
        return update

    def _one(self) -> None:
        r = self.rng
        if not len(self.tracks):
            self.meta["title"] = f"Song {r.randrange(10_000)}"
            self.meta["bpm"] = float(r.choice((90, 100, 120, 128, 140)))
            self.meta["key"] = r.choice(("C", "Am", "F#m", "Eb"))
            self.meta["time_signature"] = "4/4"
            self._add_track()
            return
        roll = r.random()
        if roll < 0.55:
            self._type()
        elif roll < 0.60:
            self._backspace()
        elif roll < 0.72:  # a fader moves in small steps
            track = self._track()
            volume = track.get("volume_db", 0.0)
            track["volume_db"] = round(max(-60.0, min(6.0, volume + r.uniform(-1.5, 1.5))), 1)
        elif roll < 0.76:
            self._track()["pan"] = round(r.uniform(-1, 1), 2)
        elif roll < 0.85:
            clip = self._clip()
            if clip is not None:
                clip["start"] = max(0.0, clip.get("start", 0.0) + r.choice((-1.0, -0.5, 0.5, 1.0)))
        elif roll < 0.88:
            key = r.choice(("muted", "solo"))
            track = self._track()
            track[key] = not track.get(key, False)
        elif roll < 0.92:
            self._add_clip()
        elif roll < 0.94 and len(self.tracks) < MAX_TRACKS:
            self._add_track()
        elif roll < 0.97:
            if len(self.comments) >= MAX_COMMENTS:
                del self.comments[0]
            self.comments.append(
                Map(
                    {
                        "id": uuid.UUID(int=r.getrandbits(128)).hex,
                        "author": "bench",
                        "text": "maybe louder here?",
                        "at": round(r.uniform(0, 180), 1),
                        "created_at": 1.7e12 + r.randrange(10**9),
                        "resolved": False,
                    }
                )
            )
        elif roll < 0.98 and len(self.comments):
            self.comments[r.randrange(len(self.comments))]["resolved"] = True
        elif roll < 0.99:
            if len(self.markers) >= MAX_MARKERS:
                del self.markers[0]
            self.markers.append(
                Map({"id": f"m{r.randrange(10**6)}", "name": "chorus", "at": r.uniform(0, 180)})
            )
        else:
            self.meta["bpm"] = float(r.randrange(70, 180))

    def _track(self) -> Map[Any]:
        track: Map[Any] = self.tracks[self.rng.randrange(len(self.tracks))]
        return track

    def _clip(self) -> Map[Any] | None:
        clips = self._track().get("clips")
        if not isinstance(clips, Array) or not len(clips):
            return None
        clip: Map[Any] = clips[self.rng.randrange(len(clips))]
        return clip

    def _add_track(self) -> None:
        r = self.rng
        n = len(self.tracks)
        self.tracks.append(
            Map(
                {
                    "id": f"t{n}-{r.randrange(10**6)}",
                    "name": f"Track {n + 1}",
                    "kind": r.choice(("audio", "audio", "midi", "bus")),
                    "color": r.choice(("#e11d48", "#2563eb", "#16a34a")),
                    "volume_db": 0.0,
                    "pan": 0.0,
                    "muted": False,
                    "solo": False,
                    "clips": Array(),
                }
            )
        )

    def _add_clip(self) -> None:
        r = self.rng
        clips = self._track().get("clips")
        if isinstance(clips, Array) and len(clips) >= MAX_CLIPS:
            del clips[r.randrange(len(clips))]
        elif isinstance(clips, Array):
            clips.append(
                Map(
                    {
                        "id": f"c{r.randrange(10**9)}",
                        "asset_id": f"a{r.randrange(1000)}",
                        "start": float(r.randrange(0, 128)),
                        "length": float(r.choice((2, 4, 8))),
                        "offset": 0.0,
                        "gain_db": 0.0,
                    }
                )
            )

    def _type(self) -> None:
        r = self.rng
        if r.random() < 0.03:  # the cursor jumps elsewhere now and then
            self.cursor = r.randrange(len(self.lyrics) + 1)
        self.cursor = min(self.cursor, len(self.lyrics))
        if len(self.lyrics) >= MAX_LYRICS:  # full: a stretch before the cursor is cut instead
            cut = min(self.cursor, 1 + r.randrange(60))
            if cut:
                del self.lyrics[self.cursor - cut : self.cursor]
                self.cursor -= cut
                return
        char = "\n" if r.random() < 0.03 else r.choice("etaoinshrdlu      ")
        self.lyrics.insert(self.cursor, char)
        self.cursor += 1

    def _backspace(self) -> None:
        self.cursor = min(self.cursor, len(self.lyrics))
        if self.cursor > 0:
            del self.lyrics[self.cursor - 1 : self.cursor]
            self.cursor -= 1
        else:
            self._type()


def _project(
    index: int,
    updates: int,
    members: list[int],
    users: list[str],
    rng: random.Random,
    engine: str = "pycrdt",
) -> tuple[list[list[tuple[int, int, int, bytes]]], list[tuple[int, int, bytes]]]:
    """A project's history as sessions of compact events (the first opens with the project's
    creation), and its snapshots."""
    owner = members[0]
    opening: list[tuple[int, int, int, bytes]] = [
        (index, CREATED, owner, events.encode({"title": f"Project {index}"}))
    ]
    for n, user in enumerate(members):
        role = OWNER if n == 0 else EDITOR
        body = {"user_id": users[user], "role": role}
        opening.append((index, MEMBER, owner, events.encode(body)))
    count = rng.randint(2, 5)
    cuts = sorted(rng.sample(range(1, updates), count - 1)) if updates > count else []
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, updates], strict=True)]
    yjs = engine == "yjs"
    made = _yjs_edits(sizes, rng.getrandbits(31)) if yjs else _pycrdt_edits(sizes, rng)
    sessions: list[list[tuple[int, int, int, bytes]]] = []
    snapshots: list[tuple[int, int, bytes]] = []
    version = len(opening)
    for _ in sizes:
        user = rng.choice(members)
        items = opening if not sessions else []
        items.append((index, JOINED, user, b""))
        version += 1
        for kind, data in made:
            if kind == _END:
                break
            if kind == _UPDATE:
                items.append((index, DOC, user, data))
                version += 1
                continue
            snapshots.append((index, version, data))
            # only those the store would keep: a long project's would not fit in memory
            kept = KEPT.snapshots_kept([v for _, v, _ in snapshots], version, len(data))
            snapshots = [s for s in snapshots if s[1] in kept]
        items.append((index, LEFT, user, b""))
        version += 1
        sessions.append(items)
    return sessions, snapshots


# What an engine's edits are made of: an update, the document's state after the update before
# it (every SNAPSHOT_EVERY updates of the project), the end of a session.
_UPDATE, _SNAPSHOT, _END = range(3)


def _pycrdt_edits(sizes: list[int], rng: random.Random) -> Iterator[tuple[int, bytes]]:
    """Sessions of `sizes` updates made with pycrdt, each a new Doc loaded from the last state."""
    state = b""
    made = 0
    for size in sizes:
        session = _Session(state, rng)
        for _ in range(size):
            yield _UPDATE, session.edit()
            made += 1
            if made % SNAPSHOT_EVERY == 0:
                yield _SNAPSHOT, session.doc.get_update()
        yield _END, b""
        state = session.doc.get_update()


def _yjs_edits(sizes: list[int], seed: int) -> Iterator[tuple[int, bytes]]:
    """The same sessions made by the JavaScript yjs (load/js/studio_edits.mjs): pycrdt's text
    inserts walk the text from its start, so a project of a million updates took hours."""
    plan = json.dumps({"seed": seed, "sessions": sizes, "snapshot_every": SNAPSHOT_EVERY})
    with subprocess.Popen(
        ["node", str(STUDIO_EDITS), plan],
        stdout=subprocess.PIPE,
        cwd=STUDIO_EDITS.parent,
        bufsize=1 << 20,
    ) as node:
        assert node.stdout is not None
        reader = node.stdout
        while kind := reader.read(1):
            if kind[0] == 1:
                yield _END, b""
                continue
            length = int.from_bytes(reader.read(4), "big")
            yield (_UPDATE if kind[0] == 0 else _SNAPSHOT), reader.read(length)
    if node.returncode:
        raise RuntimeError(
            f"{STUDIO_EDITS.name} exited with {node.returncode}"
            " (its yjs: make load/js/node_modules/.installed)"
        )


def generate(sizes: Sizes, progress: Callable[[str], None] = lambda _: None) -> StudioLog:
    rng = random.Random(sizes.seed)
    projects = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(sizes.projects)]
    # as many users as projects, and at least 3 (a project has up to 3 members)
    users = [
        str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(max(sizes.projects, 3))
    ]
    base, extra = divmod(sizes.updates, sizes.projects)
    histories: list[deque[list[tuple[int, int, int, bytes]]]] = []
    snapshots: list[tuple[int, int, bytes]] = []
    for index in range(sizes.projects):
        members = rng.sample(range(len(users)), rng.randint(1, 3))
        sessions, snaps = _project(index, base + (index < extra), members, users, rng, sizes.engine)
        histories.append(deque(sessions))
        snapshots.extend(snaps)
        if (index + 1) % max(1, sizes.projects // 10) == 0:
            progress(f"generated {index + 1:,} of {sizes.projects:,} projects")
    return StudioLog(sizes, projects, users, _interleave(histories, sizes.active, rng), snapshots)


def _interleave(
    histories: list[deque[list[tuple[int, int, int, bytes]]]], active: int, rng: random.Random
) -> list[tuple[int, int, int, bytes]]:
    """The sessions in log order: `active` at once, each next event from a random one of them."""
    waiting = deque(rng.sample(range(len(histories)), len(histories)))
    running: list[tuple[int, deque[tuple[int, int, int, bytes]]]] = []
    out: list[tuple[int, int, int, bytes]] = []
    while waiting or running:
        while waiting and len(running) < active:
            project = waiting.popleft()
            running.append((project, deque(histories[project].popleft())))
        slot = rng.randrange(len(running))
        project, session = running[slot]
        out.append(session.popleft())
        if not session:
            running[slot] = running[-1]
            running.pop()
            if histories[project]:
                waiting.append(project)
    return out


def cached(
    sizes: Sizes, folder: Path | None = None, progress: Callable[[str], None] = lambda _: None
) -> StudioLog:
    """The log of `sizes`, from its cache file when one was made before, else generated and
    cached (the file is written whole, then renamed into place)."""
    folder = folder or Path(tempfile.gettempdir()) / "jacameno-bench-projections"
    path = folder / (
        f"log-g{GENERATOR}-{sizes.updates}u-{sizes.projects}p-{sizes.active}a-{sizes.seed}s"
        f"{'' if sizes.engine == 'pycrdt' else '-' + sizes.engine}.pickle"
    )
    if path.exists():
        progress(f"log from the cache {path}")
        raw = pickle.loads(path.read_bytes())  # a file this function wrote
        return StudioLog(
            sizes,
            list(raw["projects"]),
            list(raw["users"]),
            raw["events"],
            raw["snapshots"],
        )
    log = generate(sizes, progress)
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(
        pickle.dumps(
            {
                "projects": log.projects,
                "users": log.users,
                "events": log.events,
                "snapshots": log.snapshots,
            },
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    )
    partial.rename(path)
    progress(f"cached the log in {path}")
    return log


def _event(log: StudioLog, kind: int, user: int, data: bytes, connection: str) -> NewEvent:
    user_id = log.users[user]
    if kind == DOC:
        metadata = {"user_id": user_id, "connection_id": connection, "node": NODE}
        return NewEvent(events.DOC_UPDATED, data, metadata)
    if kind in (JOINED, LEFT):
        extra: dict[str, Any] = (
            {"role": EDITOR, "dialect": "y-websocket"} if kind == JOINED else {"seconds": 60.0}
        )
        return events.session_event(
            events.SESSION_JOINED if kind == JOINED else events.SESSION_LEFT,
            user_id=user_id,
            connection_id=connection,
            node=NODE,
            **extra,
        )
    if kind == MEMBER:
        return NewEvent(events.MEMBER_ADDED, data, {"user_id": user_id})
    return NewEvent(events.PROJECT_CREATED, data, {"user_id": user_id})


async def write(
    store: EventStore,
    log: StudioLog,
    window: int = 1000,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Append the log in windows of `window` events: per window, one append per stream with its
    events in order, all appended at once (group commit makes them one transaction or a few),
    then the snapshots whose version the window reached."""
    snapshots: dict[int, deque[tuple[int, bytes]]] = {}
    for project, version, state in log.snapshots:
        snapshots.setdefault(project, deque()).append((version, state))
    versions = [0] * len(log.projects)
    sessions = [0] * len(log.projects)
    total = len(log.events)
    for start in range(0, total, window):
        by_project: dict[int, list[NewEvent]] = {}
        for project, kind, user, data in log.events[start : start + window]:
            sessions[project] += kind == JOINED
            connection = f"c{project}-{sessions[project]}"
            by_project.setdefault(project, []).append(_event(log, kind, user, data, connection))
        await asyncio.gather(
            *(
                store.append(events.stream_name(log.projects[p]), batch)
                for p, batch in by_project.items()
            )
        )
        for project, batch in by_project.items():
            versions[project] += len(batch)
            pending = snapshots.get(project)
            while pending and pending[0][0] <= versions[project]:
                version, state = pending.popleft()
                await store.save_snapshot(events.stream_name(log.projects[project]), version, state)
        done = min(start + window, total)
        if done % (window * 100) == 0 or done == total:
            progress(f"appended {done:,} of {total:,} events")
