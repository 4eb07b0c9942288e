"""Read-model table specs: their DDL per database kind, and the statement shapes of set-based
writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.tables import (
    IN_LIST,
    Table,
    chunks,
    in_list,
    in_list_chunks,
    live,
    rebuilding,
    search_condition,
    search_words,
)

SPEC = Table(
    "things",
    {"id": "text not null", "n": "bigint", "x": "double"},
    key=("id",),
    indexes=[("n", "id")],
)


@given(st.integers(0, 100_000), st.integers(1, 40_000))
def test_chunks_cover_every_item_once_in_power_of_two_statements(count: int, most: int) -> None:
    ranges = chunks(count, most)
    assert [i for start, end in ranges for i in range(start, end)] == list(range(count))
    for start, end in ranges:
        size = end - start
        assert size <= most
        assert size & (size - 1) == 0


@given(st.lists(st.integers(), min_size=1, max_size=300), st.integers(1, 50))
def test_an_in_list_names_the_same_values_in_one_of_a_few_shapes(
    values: list[int], first: int
) -> None:
    marks, padded = in_list(values, first)
    size = len(padded)
    assert size & (size - 1) == 0
    assert len(values) <= size < 2 * len(values)
    assert set(padded) == set(values)
    assert padded[: len(values)] == values
    assert marks == ", ".join(f"${first + i}" for i in range(size))


def test_in_list_chunks_cover_every_value_once_within_the_bound() -> None:
    values = list(range(2 * IN_LIST + 3))
    pieces = list(in_list_chunks(values))
    assert [v for piece in pieces for v in piece] == values
    assert [len(p) for p in pieces] == [IN_LIST, IN_LIST, 3]
    assert list(in_list_chunks([])) == []
    with pytest.raises(ValueError, match="no values"):
        in_list([])
    with pytest.raises(ValueError, match="more than"):
        in_list(values)


def test_a_table_is_created_per_kind_with_a_fresh_token_in_its_index_names() -> None:
    pg = SPEC.create("postgres", "things__rebuild")
    assert pg[0].startswith("CREATE TABLE IF NOT EXISTS readmodels.things__rebuild (")
    assert '"x" DOUBLE PRECISION' in pg[0]
    assert '"id" TEXT NOT NULL' in pg[0]
    sqlite = SPEC.create("sqlite", "things")
    assert sqlite[0].startswith("CREATE TABLE IF NOT EXISTS things (")
    assert '"x" REAL' in sqlite[0]
    assert SPEC.create("sqlite", "things")[1] != sqlite[1]  # another token
    assert SPEC.types("postgres") == {"id": "text", "n": "bigint", "x": "double precision"}
    assert SPEC.types("sqlite") == {"id": "TEXT", "n": "BIGINT", "x": "REAL"}
    assert live([SPEC]) == {"things": "things"}
    assert rebuilding([SPEC]) == {"things": "things__rebuild"}


def test_a_spec_with_an_unknown_type_or_index_column_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown column type"):
        Table("t", {"a": "json"}, key=("a",))
    with pytest.raises(ValueError, match="unknown columns"):
        Table("t", {"a": "text"}, key=("b",))


def test_a_search_table_is_fts5_on_sqlite_and_gin_indexed_on_postgres() -> None:
    table = Table("s", {"id": "text not null", "body": "text not null"}, key=("id",), search="body")
    (sqlite,) = table.create("sqlite", "s")
    assert 'USING fts5("id" UNINDEXED, "body"' in sqlite
    postgres = table.create("postgres", "s")
    assert any("USING GIN (to_tsvector('simple', \"body\"))" in s for s in postgres)
    assert table.types("sqlite") == {"id": "", "body": ""}
    assert search_words("Night-drive, ZOË_x!* 'or' 9") == ["night", "drive", "zoë", "x", "or", "9"]
    assert search_condition("sqlite", "s", "body", ["a", "b"], 3).startswith("s MATCH (")
    assert "to_tsquery('simple', $1 || ':*')" in search_condition("postgres", "s", "body", ["a"], 1)
    with pytest.raises(ValueError, match="search column must be a text column"):
        Table("s", {"n": "bigint not null"}, key=("n",), search="n")
