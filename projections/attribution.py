"""A text as runs of bytes, each with who wrote it and in which version: what blame keeps of the
lyrics while it replays them (projections.blame, docs/history.md "Blame").

Positions and lengths are UTF-8 bytes, as yrs counts them in a Y.Text's change deltas. An
embed (a non-text insert) takes one position and spells nothing, as `str(text)` shows it.

The runs live in chunks of at most `CHUNK * 2` pieces, each chunk with its byte total, so that
finding a position costs about the square root of the number of pieces rather than all of
them: a project typed one keystroke per update holds a piece per keystroke."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

CHUNK = 256


@dataclass(frozen=True, slots=True)
class Run:
    """A stretch of the text written by `user_id` (None: not recorded) in `version`."""

    text: str
    user_id: str | None
    version: int

    def public(self) -> dict[str, Any]:
        return {"text": self.text, "user_id": self.user_id, "version": self.version}


# One piece: its bytes, the positions it takes (len(bytes), or 1 for an embed), who, when.
Piece = tuple[bytes, int, str | None, int]


class Attribution:
    """The text and who wrote each of its bytes, kept up to date from change deltas."""

    def __init__(self, chunk: int = CHUNK) -> None:
        self._chunk = chunk
        self._chunks: list[list[Piece]] = []
        self._sizes: list[list[int]] = []
        self._totals: list[int] = []

    @classmethod
    def of(cls, pieces: list[Piece], chunk: int = CHUNK) -> Attribution:
        """The attribution that holds `pieces` in order (what `pieces()` gave): how a blame
        checkpoint is read back (projections/blame_checkpoints.py)."""
        made = cls(chunk)
        for start in range(0, len(pieces), chunk):
            part = pieces[start : start + chunk]
            made._chunks.append(part)
            made._sizes.append([piece[1] for piece in part])
            made._totals.append(sum(made._sizes[-1]))
        return made

    def __len__(self) -> int:
        return sum(self._totals)

    def pieces(self) -> list[Piece]:
        """Every piece in text order, as kept (neighbours not merged)."""
        return list(self._pieces())

    def change(self, delta: list[Any], user_id: str | None, version: int) -> None:
        """Apply one Y.Text delta (retain, insert, delete, from position 0) made by `user_id`
        in `version`. A delta that reaches past the end is cut at the end, never an error."""
        at = 0
        for op in delta:
            if not isinstance(op, dict):
                continue
            if "insert" in op:
                value = op["insert"]
                data = value.encode() if isinstance(value, str) else b""
                size = len(data) if isinstance(value, str) else 1
                if size:
                    self._insert(min(at, len(self)), (data, size, user_id, version))
                    at += size
            elif isinstance(op.get("retain"), int):
                at += op["retain"]
            elif isinstance(op.get("delete"), int):
                self._delete(at, op["delete"])

    def runs(self) -> list[Run]:
        """The text as runs in order; neighbours of one user and version are merged."""
        merged: list[tuple[bytearray, str | None, int]] = []
        for data, _, user_id, version in self._pieces():
            if merged and merged[-1][1:] == (user_id, version):
                merged[-1][0].extend(data)
            else:
                merged.append((bytearray(data), user_id, version))
        found = [Run(data.decode(errors="replace"), user, v) for data, user, v in merged]
        return [run for run in found if run.text]

    def _pieces(self) -> Iterator[Piece]:
        for chunk in self._chunks:
            yield from chunk

    def _find(self, at: int) -> tuple[int, int, int]:
        """The chunk, the piece in it and the offset in that piece of position `at` (< len)."""
        ends = list(accumulate(self._totals))
        c = bisect_right(ends, at)
        before = ends[c] - self._totals[c]
        piece_ends = list(accumulate(self._sizes[c]))
        i = bisect_right(piece_ends, at - before)
        return c, i, at - before - (piece_ends[i] - self._sizes[c][i])

    def _insert(self, at: int, piece: Piece) -> None:
        if at >= len(self):
            if not self._chunks:
                self._chunks.append([])
                self._sizes.append([])
                self._totals.append(0)
            c, i = len(self._chunks) - 1, len(self._chunks[-1])
        else:
            c, i, offset = self._find(at)
            if offset:
                self._split(c, i, offset)
                i += 1
        self._chunks[c].insert(i, piece)
        self._sizes[c].insert(i, piece[1])
        self._totals[c] += piece[1]
        half = self._chunk
        if len(self._chunks[c]) > 2 * half:
            self._chunks[c + 1 : c + 1] = [self._chunks[c][half:]]
            self._sizes[c + 1 : c + 1] = [self._sizes[c][half:]]
            del self._chunks[c][half:], self._sizes[c][half:]
            self._totals[c : c + 1] = [sum(self._sizes[c]), sum(self._sizes[c + 1])]

    def _split(self, c: int, i: int, offset: int) -> None:
        """Cut piece i of chunk c in two at `offset` bytes (yrs cuts only between characters)."""
        data, size, user_id, version = self._chunks[c][i]
        head, tail = (data[:offset], offset), (data[offset:], size - offset)
        self._chunks[c][i : i + 1] = [(*head, user_id, version), (*tail, user_id, version)]
        self._sizes[c][i : i + 1] = [head[1], tail[1]]

    def _delete(self, at: int, count: int) -> None:
        count = min(count, len(self) - at)
        while count > 0:
            c, i, offset = self._find(at)
            if offset:
                self._split(c, i, offset)
                i += 1
            size = self._sizes[c][i]
            if size > count:
                self._split(c, i, count)
                size = count
            del self._chunks[c][i], self._sizes[c][i]
            self._totals[c] -= size
            count -= size
            if not self._chunks[c]:
                del self._chunks[c], self._sizes[c], self._totals[c]
