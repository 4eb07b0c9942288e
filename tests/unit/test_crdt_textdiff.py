"""The short edit between two texts (crdt.textdiff): its opcodes turn one text into the other
exactly, whether blocks of lines are compared by characters or replaced whole, and the common
ends found by bisection are the longest."""

from __future__ import annotations

from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from crdt.textdiff import coarsened, common_ends, opcodes

TEXT = st.text(alphabet="ab \nñ😀", max_size=40)


@given(st.text(alphabet="ab", max_size=12), st.text(alphabet="ab", max_size=12))
def test_common_ends_are_the_longest(before: str, after: str) -> None:
    prefix, suffix = common_ends(before, after)
    assert before[:prefix] == after[:prefix]
    assert prefix == min(len(before), len(after)) or before[prefix] != after[prefix]
    rest_before, rest_after = before[prefix:], after[prefix:]
    assert suffix <= min(len(rest_before), len(rest_after))
    assert rest_before[len(rest_before) - suffix :] == rest_after[len(rest_after) - suffix :]
    assert suffix == min(len(rest_before), len(rest_after)) or (
        rest_before[-1 - suffix] != rest_after[-1 - suffix]
    )


@given(before=TEXT, after=TEXT, pairs=st.sampled_from([4_000_000, 0]))
def test_the_opcodes_turn_one_text_into_the_other(before: str, after: str, pairs: int) -> None:
    with patch("crdt.textdiff.CHARACTER_PAIRS", pairs):
        found = opcodes(before, after)
    assert "".join(before[i1:i2] for _, i1, i2, _, _ in found) == before
    assert "".join(after[j1:j2] for _, _, _, j1, j2 in found) == after
    for tag, i1, i2, j1, j2 in found:
        assert (i1, j1) != (i2, j2)
        if tag == "equal":
            assert before[i1:i2] == after[j1:j2]


def test_a_long_text_with_edits_on_many_lines_is_compared_quickly() -> None:
    before = "".join(f"line {n} of the song, la la la\n" for n in range(3000))  # 100,000 chars
    lines = before.splitlines(keepends=True)
    after = "".join(
        line.replace("la", "lo", 1) if n % 7 == 0 else line for n, line in enumerate(lines)
    )
    found = opcodes(before, after)  # by characters alone: minutes
    changed = [op for op in found if op[0] != "equal"]
    assert len(changed) == len(range(0, 3000, 7))
    assert all(i2 - i1 == 1 and j2 - j1 == 1 for _, i1, i2, j1, j2 in changed)


@given(before=TEXT, after=TEXT, limit=st.integers(min_value=1, max_value=4))
def test_a_coarsened_edit_still_turns_one_text_into_the_other(
    before: str, after: str, limit: int
) -> None:
    found = coarsened(opcodes(before, after), limit)
    assert "".join(before[i1:i2] for _, i1, i2, _, _ in found) == before
    assert "".join(after[j1:j2] for _, _, _, j1, j2 in found) == after
    assert sum(1 for op in found if op[0] != "equal") <= limit
    for tag, i1, i2, j1, j2 in found:
        assert (i1, j1) != (i2, j2)
        assert tag != "equal" or before[i1:i2] == after[j1:j2]
        assert tag != "delete" or j1 == j2
        assert tag != "insert" or i1 == i2


def test_coarsening_keeps_the_longest_equal_stretches() -> None:
    before = "a1bb2ccc3dddd4e"
    after = "aXbbYcccZddddWe"
    # four one-character changes, between equal stretches of 2, 3 and 4 characters
    found = coarsened(opcodes(before, after), 2)
    assert [(tag, before[i1:i2], after[j1:j2]) for tag, i1, i2, j1, j2 in found] == [
        ("equal", "a", "a"),
        ("replace", "1bb2ccc3", "XbbYcccZ"),
        ("equal", "dddd", "dddd"),
        ("replace", "4", "W"),
        ("equal", "e", "e"),
    ]
