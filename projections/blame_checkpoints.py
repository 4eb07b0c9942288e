"""Blame's checkpoints: what a blame replay holds at a version (the document, who wrote each
piece of the lyrics, who last set each track's values), saved in the database so that a later
blame, on any node or after a restart, starts from the nearest one at or below its version
instead of from version 0 (docs/history.md, "Blame").

A checkpoint is derived data: it can always be made again from the log, so one that is
missing, of an unknown format or that fails to decode is passed over (the blame starts from an
earlier one, or from version 0; a damaged one is deleted, to be made again), never answered
from. Table `blame_checkpoints` (migration
0010), in the application's schema beside the runner's checkpoints rather than in `readmodels`:
a checkpoint holds the whole document, lyrics included, which the read models granted to
analysts deliberately leave out.

Format 1: `MAGIC`, the format byte, then zlib of: a 4-byte big-endian length, that many bytes of
JSON (the header: stream, version, time, the users, the pieces' byte counts, users and
versions, the setters), the document state (one Yjs v1 update) and the lyrics' bytes, the
pieces' bytes end to end."""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventstore import Limits
from projections.attribution import Piece
from sqldb import Database

logger = logging.getLogger(__name__)

FORMAT = 1
MAGIC = b"JBLAME"
# A checkpoint point every EVERY versions: a blame replays at most that many updates after the
# nearest one (about 2 s at the replay rate of the 100,000-update project, docs/history.md),
# while the replay kept in memory (projections.blame.Blames) serves the versions after the last.
EVERY = 5_000


def keeping(every: int) -> Limits:
    """Which checkpoints a stream keeps, by the snapshots' rule (eventstore.Limits.
    snapshots_kept): the 4 highest, and the highest of each span of `every` versions, spans
    widening to keep at most 128 of them, and fewer when a checkpoint is large (about 1 GiB per
    stream at the newest's size)."""
    return Limits(
        snapshots_per_stream=4,
        snapshot_spacing=every,
        spaced_snapshots=128,
        spaced_snapshot_bytes=1 << 30,
    )


class CheckpointError(ValueError):
    """A stored checkpoint that cannot be read: of another format, or damaged."""


@dataclass(slots=True)
class Author:
    """Whom and when a change is credited to: the user in the metadata of the event that made
    it (None: not recorded), that event's version and time."""

    user_id: str | None = None
    version: int = 0
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A blame replay of `stream` at `at.version`: the document as one Yjs update, the lyrics'
    pieces in text order, and by track id each followed value's last setter."""

    stream: str
    at: Author
    state: bytes
    pieces: list[Piece]
    setters: dict[str, dict[str, Author]] = field(default_factory=dict)

    def text(self) -> bytes:
        """The lyrics the pieces spell (an embed spells nothing)."""
        return b"".join(piece[0] for piece in self.pieces)


def encode(checkpoint: Checkpoint) -> bytes:
    """The stored form (format FORMAT) of `checkpoint`."""
    users: dict[str | None, int] = {}
    flat: list[int] = []
    for data, size, user_id, version in checkpoint.pieces:
        # an embed is the one piece that takes a position and holds no bytes
        if size != (len(data) or 1):
            raise ValueError("a piece's size is its bytes, or 1 for an embed")
        flat += (len(data), users.setdefault(user_id, len(users)), version)
    credits: dict[tuple[int, int, str | None], int] = {}
    setters: dict[str, dict[str, int]] = {}
    for track_id, keys in checkpoint.setters.items():
        setters[track_id] = {}
        for key, author in keys.items():
            credit = (users.setdefault(author.user_id, len(users)), author.version, _when(author))
            setters[track_id][key] = credits.setdefault(credit, len(credits))
    header = {
        "stream": checkpoint.stream,
        "version": checkpoint.at.version,
        "recorded_at": _when(checkpoint.at),
        "state": len(checkpoint.state),
        "users": list(users),
        "pieces": flat,
        "credits": list(credits),
        "setters": setters,
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    body = b"".join((len(head).to_bytes(4, "big"), head, checkpoint.state, checkpoint.text()))
    return MAGIC + bytes([FORMAT]) + zlib.compress(body, 1)


def decode(stored: bytes, stream: str) -> Checkpoint:
    """The checkpoint `stored` holds; CheckpointError if it is not one of format FORMAT of
    `stream`, whole and consistent (its document is checked by whoever applies it)."""
    if not stored.startswith(MAGIC) or stored[len(MAGIC) : len(MAGIC) + 1] != bytes([FORMAT]):
        raise CheckpointError("not a blame checkpoint of format 1")
    try:
        body = zlib.decompress(stored[len(MAGIC) + 1 :])
        size = int.from_bytes(body[:4], "big")
        header = json.loads(body[4 : 4 + size])
        return _read(header, body[4 + size :], stream)
    except CheckpointError:
        raise
    except (zlib.error, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"a damaged blame checkpoint: {exc!r}") from exc


def _read(header: dict[str, Any], rest: bytes, stream: str) -> Checkpoint:
    if header["stream"] != stream:
        raise CheckpointError(f"a checkpoint of {header['stream']!r}, not of {stream!r}")
    state_size = _count(header["state"])
    state, text = rest[:state_size], rest[state_size:]
    if len(state) != state_size:
        raise CheckpointError("the document state is cut short")
    users = header["users"]
    if not all(user is None or isinstance(user, str) for user in users):
        raise CheckpointError("a user that is not text")
    flat = header["pieces"]
    if len(flat) % 3:
        raise CheckpointError("the pieces are cut short")
    pieces: list[Piece] = []
    at = 0
    for i in range(0, len(flat), 3):
        count, user, version = _count(flat[i]), users[_count(flat[i + 1])], _count(flat[i + 2])
        pieces.append((text[at : at + count], count or 1, user, version))
        at += count
    if at != len(text):
        raise CheckpointError("the lyrics' bytes and pieces disagree")
    credits = [
        Author(users[_count(user)], _count(version), _moment(when))
        for user, version, when in header["credits"]
    ]
    setters = {
        str(track_id): {str(key): credits[_count(index)] for key, index in keys.items()}
        for track_id, keys in header["setters"].items()
    }
    at_author = Author(None, _count(header["version"]), _moment(header["recorded_at"]))
    return Checkpoint(stream, at_author, state, pieces, setters)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"not a count: {value!r}")
    return value


def _when(author: Author) -> str | None:
    return None if author.recorded_at is None else author.recorded_at.isoformat()


def _moment(text: Any) -> datetime | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise CheckpointError(f"not a time: {text!r}")
    return datetime.fromisoformat(text)


class Checkpoints:
    """The stored checkpoints: listed, read and saved (thinned as they are saved), with a
    point every `every` versions and those `keep` says a stream keeps (`keeping(every)`)."""

    def __init__(self, db: Database, every: int = EVERY, keep: Limits | None = None) -> None:
        if every < 1:
            raise ValueError("a checkpoint every 1 version or more")
        self._db = db
        self.every = every
        self.keep = keeping(every) if keep is None else keep

    def points(self, start: int, upto: int) -> list[int]:
        """The checkpoint points in (start, upto]."""
        return list(range((start // self.every + 1) * self.every, upto + 1, self.every))

    def wanted(self, stored: Sequence[tuple[int, int]], start: int, upto: int) -> set[int]:
        """The points of (start, upto] worth saving by a replay from `start` to `upto`: those
        not stored yet (`stored`: version and size of each) that the stream keeps once it has
        them all (by the size of the newest stored, if any), so that a first replay of a long
        stream does not write checkpoints that its own later ones thin out at once."""
        new = self.points(start, upto)
        if not new:
            return set()
        have = {version for version, _ in stored}
        size = max(stored)[1] if stored else 0
        kept = self.keep.snapshots_kept([*have, *new], max(new[-1], *have, 0), size)
        return {point for point in new if point in kept and point not in have}

    async def listed(self, stream: str) -> list[tuple[int, int]]:
        """The version and size in bytes of each of `stream`'s checkpoints, by version."""
        rows = await self._db.fetch(
            "SELECT version, size FROM blame_checkpoints WHERE stream = $1 ORDER BY version",
            stream,
        )
        return [(int(row[0]), int(row[1])) for row in rows]

    async def read(self, stream: str, version: int) -> bytes | None:
        """The stored form of `stream`'s checkpoint at `version`; None if there is none, or
        it is of another format (a newer node may write one this node cannot read)."""
        row = await self._db.fetchrow(
            "SELECT format, data FROM blame_checkpoints WHERE stream = $1 AND version = $2",
            stream,
            version,
        )
        if row is None:
            return None
        if row[0] != FORMAT:
            logger.info(
                "a blame checkpoint of another format is passed over",
                extra={"action": "blame.checkpoint_format", "stream": stream, "version": version},
            )
            return None
        return bytes(row[1])

    async def save(self, stream: str, version: int, stored: bytes) -> None:
        """Save `stream`'s checkpoint at `version` if the stream keeps it, and delete those it
        keeps no longer (`keep`), in one transaction. Saving one that exists changes nothing:
        two replays of one log make the same checkpoint. Nodes saving at once may keep one
        too many until the next save; every one kept is true."""
        async with self._db.transaction() as conn:
            rows = await conn.fetch(
                "SELECT version FROM blame_checkpoints WHERE stream = $1", stream
            )
            have = [int(row[0]) for row in rows]
            newest = max([*have, version])
            kept = self.keep.snapshots_kept([*have, version], newest, len(stored))
            if version in kept and version not in have:
                await conn.execute(
                    "INSERT INTO blame_checkpoints (stream, version, format, size, data,"
                    " saved_at) VALUES ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (stream, version) DO NOTHING",
                    stream,
                    version,
                    FORMAT,
                    len(stored),
                    stored,
                    int(time.time() * 1000),
                )
            dropped = [(stream, v) for v in have if v not in kept]
            if dropped:
                await conn.executemany(
                    "DELETE FROM blame_checkpoints WHERE stream = $1 AND version = $2", dropped
                )

    async def drop(self, stream: str, version: int) -> None:
        """Delete `stream`'s checkpoint at `version` (a damaged one: the next replay that
        passes its point saves it again)."""
        await self._db.execute(
            "DELETE FROM blame_checkpoints WHERE stream = $1 AND version = $2", stream, version
        )
