"""lib0's primitives, decoded strictly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdt import MalformedUpdate
from crdt.encoding import MAX_SAFE_INTEGER, Reader, write_var_string, write_var_uint


@given(st.integers(min_value=0, max_value=MAX_SAFE_INTEGER), st.text())
def test_var_uints_and_strings_round_trip(value: int, text: str) -> None:
    reader = Reader(write_var_uint(value) + write_var_string(text), "test")
    assert (reader.var_uint(), reader.var_string()) == (value, text)
    reader.end()


def test_var_uints_over_the_javascript_range_are_refused() -> None:
    with pytest.raises(MalformedUpdate, match="larger"):
        Reader(write_var_uint(2**53), "test").var_uint()
    with pytest.raises(MalformedUpdate, match="too long"):
        Reader(b"\xff" * 12 + b"\x01", "test").var_uint()


def test_a_string_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(MalformedUpdate, match="not UTF-8"):
        Reader(b"\x01\xff", "test").var_string()
