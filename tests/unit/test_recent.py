"""Values read lately (jacameno.recent.Recent): each trusted for its seconds from when its read
began, at most `size` of them kept, the oldest read out first."""

from __future__ import annotations

from jacameno.recent import Recent


def test_a_value_is_trusted_until_its_seconds_have_passed() -> None:
    recent: Recent[str] = Recent(seconds=10.0, size=4)
    recent.put("a", "one", read_at=100.0)
    assert recent.get("a", now=109.9) == "one"
    assert recent.get("a", now=110.0) is None
    assert recent.get("a", now=105.0) is None  # once expired, it is forgotten


def test_a_new_read_replaces_the_value_and_its_time() -> None:
    recent: Recent[str] = Recent(seconds=10.0, size=4)
    recent.put("a", "one", read_at=100.0)
    recent.put("a", "two", read_at=105.0)
    assert recent.get("a", now=112.0) == "two"


def test_at_most_size_values_are_kept_the_oldest_read_out_first() -> None:
    recent: Recent[int] = Recent(seconds=10.0, size=2)
    recent.put("a", 1, read_at=0.0)
    recent.put("b", 2, read_at=0.0)
    recent.put("c", 3, read_at=0.0)
    assert [recent.get(key, now=1.0) for key in "abc"] == [None, 2, 3]
    assert recent.get("b", now=1.0) == 2  # a use does not make it newer
    recent.put("d", 4, read_at=1.0)
    assert [recent.get(key, now=1.0) for key in "bcd"] == [None, 3, 4]
    recent.put("c", 3, read_at=1.0)  # a read again does
    recent.put("e", 5, read_at=1.0)
    assert [recent.get(key, now=1.0) for key in "cde"] == [3, None, 5]


def test_drop_and_clear_forget() -> None:
    recent: Recent[int] = Recent(seconds=10.0, size=4)
    recent.put("a", 1, read_at=0.0)
    recent.put("b", 2, read_at=0.0)
    recent.drop("a")
    recent.drop("missing")
    assert (recent.get("a", now=1.0), recent.get("b", now=1.0)) == (None, 2)
    recent.clear()
    assert recent.get("b", now=1.0) is None
