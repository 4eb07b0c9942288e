"""Random studio edits from several pycrdt clients, recorded into a stream as a room would:
what replay and diff tests play."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from domain.document import plain
from domain.events import DOC_UPDATED, SESSION_JOINED
from eventstore import EventStore, NewEvent

CLIENTS = 3

# One step: (client, what it does, a number that picks where or how much).
STEP = st.tuples(
    st.integers(0, CLIENTS - 1),
    st.sampled_from(
        [
            "track",
            "volume",
            "rename",
            "type",
            "erase",
            "comment",
            "resolve",
            "bpm",
            "clip",
            "move",
            "sync",
            "join",
            "snapshot",
            "marker",
            "mute",
        ]
    ),
    st.integers(0, 50),
)


def edit(doc: Doc[Any], what: str, n: int) -> None:
    """One studio edit on a client's document (nothing when there is nothing to edit)."""
    tracks = doc.get("tracks", type=Array)
    lyrics = doc.get("lyrics", type=Text)
    comments = doc.get("comments", type=Array)
    if what == "track":
        tracks.append(Map({"id": f"t{uuid.uuid4().hex[:6]}", "name": f"T{n}", "clips": Array()}))
    elif what == "bpm":
        doc.get("meta", type=Map)["bpm"] = 60 + n
    elif what == "type":
        lyrics.insert(n % (len(lyrics) + 1), "la" * (n % 4 + 1))
    elif what == "erase" and len(lyrics):
        start = n % len(lyrics)
        del lyrics[start : min(len(lyrics), start + n % 3 + 1)]
    elif what == "marker":
        markers = doc.get("markers", type=Array)
        markers.append(Map({"id": f"m{n}-{uuid.uuid4().hex[:4]}", "name": f"M{n}", "at": n}))
    elif what == "comment":
        comments.append(Map({"id": f"c{n}-{uuid.uuid4().hex[:4]}", "text": "hm", "at": n}))
    elif what == "resolve" and len(comments):
        comments[n % len(comments)]["resolved"] = True
    elif len(tracks):
        track = tracks[n % len(tracks)]
        if what == "volume":
            track["volume_db"] = -n / 2
        elif what == "mute":
            track["muted"] = n % 2 == 0
        elif what == "rename":
            track["name"] = f"Renamed {n}"
        elif what == "clip":
            track["clips"].append(Map({"id": f"k{n}", "start": n / 4, "length": 1.0}))
        elif what == "move" and len(track["clips"]):
            track["clips"][0]["start"] = n / 2


async def record(store: EventStore, steps: list[tuple[int, str, int]]) -> tuple[str, list[Any]]:
    """Play `steps` from several pycrdt clients into a new stream as a room would (the live
    document applies each update as it is appended); the live document's plain form at each
    version (index 0: before any event)."""
    stream = f"project-{uuid.uuid4()}"
    live: Doc[Any] = Doc()
    clients: list[Doc[Any]] = [Doc() for _ in range(CLIENTS)]
    seen = [plain(live)]
    for client, what, n in steps:
        doc = clients[client]
        if what == "sync":
            doc.apply_update(live.get_update(doc.get_state()))
            continue
        if what == "snapshot":
            if len(seen) > 1:
                await store.save_snapshot(stream, len(seen) - 1, live.get_update())
            continue
        if what == "join":
            await store.append(stream, [NewEvent(SESSION_JOINED, b"{}", {"user_id": "u"})])
            seen.append(seen[-1])
            continue
        before = doc.get_state()
        edit(doc, what, n)
        update = doc.get_update(before)
        if update == b"\x00\x00":
            continue
        await store.append(stream, [NewEvent(DOC_UPDATED, update, {"user_id": f"u{client}"})])
        live.apply_update(update)
        seen.append(plain(live))
    return stream, seen
