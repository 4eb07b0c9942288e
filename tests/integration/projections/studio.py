"""Several pycrdt clients editing one project's lyrics and mixer apart and syncing now and then,
every update logged under its client's user: what the blame tests replay (test_blame.py,
test_blame_checkpoints.py)."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from domain.events import DOC_UPDATED, SESSION_JOINED
from eventstore import EventStore, NewEvent

CLIENTS = 3
STEP = st.tuples(
    st.integers(0, CLIENTS - 1),
    st.sampled_from(["type", "type", "erase", "volume", "pan", "track", "sync", "join"]),
    st.integers(0, 50),
)


class Studio:
    """Clients editing apart and syncing now and then; every update logged under its client's
    user, as a room logs it. Each typed character and each mixer value is unique, so the
    document itself says who wrote it and in which version."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.stream = f"project-{uuid.uuid4()}"
        self.live: Doc[Any] = Doc()
        self.clients: list[Doc[Any]] = [Doc() for _ in range(CLIENTS)]
        self.lyrics = [""]  # the live lyrics at each version
        self.wrote: dict[str, tuple[str, int]] = {}  # character or value -> (user, version)
        self.made = 0

    def _unique(self) -> str:
        self.made += 1  # 3- and 4-byte characters, so that byte positions are exercised
        return chr(0x4E00 + self.made) if self.made % 2 else chr(0x1F300 + self.made)

    async def step(self, client: int, what: str, n: int) -> None:
        doc, version, user = self.clients[client], len(self.lyrics), f"u{client}"
        if what == "sync":
            doc.apply_update(self.live.get_update(doc.get_state()))
            return
        if what == "join":
            await self.store.append(self.stream, [NewEvent(SESSION_JOINED, b"{}", {})])
            self.lyrics.append(self.lyrics[-1])
            return
        before = doc.get_state()
        lyrics, tracks = doc.get("lyrics", type=Text), doc.get("tracks", type=Array)
        if what == "type":
            text = "".join(self._unique() for _ in range(n % 3 + 1))
            self.wrote.update(dict.fromkeys(text, (user, version)))
            lyrics.insert(len(str(lyrics)[: n % (len(str(lyrics)) + 1)].encode()), text)
        elif what == "erase" and str(lyrics):
            text = str(lyrics)
            start = n % len(text)
            del lyrics[len(text[:start].encode()) : len(text[: start + n % 3 + 1].encode())]
        elif what == "track":
            value = self._unique()
            self.wrote[value] = (user, version)
            tracks.append(Map({"id": f"t{self.made}", "volume_db": value, "clips": Array()}))
        elif what in ("volume", "pan") and len(tracks):
            value = self._unique()
            self.wrote[value] = (user, version)
            tracks[n % len(tracks)]["volume_db" if what == "volume" else "pan"] = value
        update = doc.get_update(before)
        if update == b"\x00\x00":
            return
        await self.store.append(self.stream, [NewEvent(DOC_UPDATED, update, {"user_id": user})])
        self.live.apply_update(update)
        self.lyrics.append(str(self.live.get("lyrics", type=Text)))
