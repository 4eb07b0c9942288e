"""The runs blame keeps of the lyrics, against a plain list of characters: random Y.Text
deltas (byte positions, multi-byte characters, embeds, deletes past the end) leave runs that
spell the text, every character credited to the delta that inserted it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from projections.attribution import Attribution

_TEXT = st.text(alphabet="aé€😀\n", min_size=1, max_size=4)
# (what, where as a fraction of the text, text to insert or characters to delete)
_OP = st.tuples(st.sampled_from(["insert", "delete", "embed"]), st.floats(0, 1), _TEXT)


def _delta(text: list[str], op: tuple[str, float, str]) -> tuple[list[dict[str, Any]], int]:
    """A delta doing `op` on `text` (one entry per position: a character, or "" for an embed),
    in UTF-8 bytes as yrs counts; and the index of the character it starts at."""
    what, where, value = op
    at = min(int(where * (len(text) + 1)), len(text))
    retain = [{"retain": sum(len(c.encode()) or 1 for c in text[:at])}] if at else []
    if what == "insert":
        return [*retain, {"insert": value}], at
    if what == "embed":
        return [*retain, {"insert": {"image": value}}], at
    # a delete of a few characters; at the end of the text, one byte more than it holds
    count = sum(len(c.encode()) or 1 for c in text[at : at + len(value)])
    count += at + len(value) >= len(text)
    return [*retain, {"delete": count}], at


@given(ops=st.lists(_OP, max_size=40), chunk=st.integers(1, 4))
def test_the_runs_spell_the_text_and_credit_each_character_to_its_insert(
    ops: list[tuple[str, float, str]], chunk: int
) -> None:
    runs = Attribution(chunk)
    text: list[str] = []
    by: list[tuple[str, int]] = []
    for version, op in enumerate(ops, start=1):
        delta, at = _delta(text, op)
        user = f"u{version % 3}"
        runs.change(delta, user, version)
        what, _, value = op
        added = list(value) if what == "insert" else [""] if what == "embed" else []
        text[at:at] = added
        by[at:at] = [(user, version)] * len(added)
        if what == "delete":
            del text[at : at + len(value)], by[at : at + len(value)]
        found = runs.runs()
        assert "".join(r.text for r in found) == "".join(text)
        credited = [(r.user_id, r.version) for r in found for _ in r.text]
        assert credited == [b for c, b in zip(text, by, strict=True) if c]
        assert all(r.text for r in found)
        assert len(runs) == sum(len(c.encode()) or 1 for c in text)


@given(
    ops=st.lists(_OP, max_size=40),
    chunk=st.integers(1, 4),
    cut=st.integers(0, 40),
    again=st.integers(1, 4),
)
def test_pieces_read_back_carry_on_as_the_attribution_they_came_from(
    ops: list[tuple[str, float, str]], chunk: int, cut: int, again: int
) -> None:
    """What a blame checkpoint keeps of the lyrics (`pieces`, then `Attribution.of`, maybe in
    chunks of another size) answers and goes on as the attribution it was taken from."""
    first, text = Attribution(chunk), list[str]()
    copy: Attribution | None = None
    for version, op in enumerate(ops, start=1):
        if version - 1 == cut:
            copy = Attribution.of(first.pieces(), again)
            assert copy.runs() == first.runs()
            assert len(copy) == len(first)
        delta, at = _delta(text, op)
        for runs in (first, copy):
            if runs is not None:
                runs.change(delta, f"u{version % 3}", version)
        what, _, value = op
        text[at:at] = list(value) if what == "insert" else [""] if what == "embed" else []
        if what == "delete":
            del text[at : at + len(value)]
        if copy is not None:
            assert copy.runs() == first.runs()
            assert copy.pieces() == first.pieces()
