"""HTTP Range, If-None-Match and If-Range as jacameno.http.ranges reads them (RFC 9110 §13-14)."""

from __future__ import annotations

import pytest

from jacameno.http.ranges import ByteRange, Unsatisfiable, none_match, range_applies, requested

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=0-", 0, SIZE),
        ("bytes=999-", 999, SIZE),
        ("bytes=999-999", 999, SIZE),
        ("bytes=10-1000000", 10, SIZE),
        ("bytes=-1", 999, SIZE),
        ("bytes=-1000", 0, SIZE),
        ("bytes=-5000", 0, SIZE),
        ("bytes= 5 - 9 ", 5, 10),
        ("Bytes=5-9", 5, 10),
    ],
)
def test_single_ranges_are_read_to_half_open_spans(header: str, start: int, end: int) -> None:
    assert requested(header, SIZE) == ByteRange(start, end, SIZE)


def test_a_range_says_its_content_range() -> None:
    found = requested("bytes=-10", SIZE)
    assert found is not None
    assert (found.content_range, found.length) == ("bytes 990-999/1000", 10)


@pytest.mark.parametrize(
    "header",
    ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=9-3", "bytes=", "bytes=-", "bytes=a-b"],
)
def test_unsatisfiable_or_malformed_byte_ranges_are_refused(header: str) -> None:
    with pytest.raises(Unsatisfiable) as refused:
        requested(header, SIZE)
    assert refused.value.content_range == "bytes */1000"


def test_an_empty_representation_satisfies_no_range() -> None:
    for header in ("bytes=0-", "bytes=-1", "bytes=0-0"):
        with pytest.raises(Unsatisfiable):
            requested(header, 0)


@pytest.mark.parametrize("header", [None, "items=0-5", "bytes=0-1,4-5"])
def test_no_header_other_units_and_several_ranges_get_the_whole(header: str | None) -> None:
    assert requested(header, SIZE) is None


def test_if_none_match_compares_weakly_and_takes_a_star() -> None:
    etag = '"abc"'
    assert none_match('"abc"', etag)
    assert none_match('W/"abc"', etag)
    assert none_match('"x", "abc"', etag)
    assert none_match("*", etag)
    assert not none_match('"abd"', etag)
    assert not none_match(None, etag)


def test_if_range_honours_the_range_only_for_the_same_strong_tag() -> None:
    etag = '"abc"'
    assert range_applies(None, etag)
    assert range_applies('"abc"', etag)
    assert not range_applies('W/"abc"', etag)
    assert not range_applies('"other"', etag)
    assert not range_applies("Wed, 21 Oct 2015 07:28:00 GMT", etag)  # a date: we give none
