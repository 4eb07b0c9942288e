"""Random edits of a Y.Text for property tests: pycrdt indexes a text by UTF-8 bytes, so a
character position in the plain string is turned into its byte offset."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text


def type_or_erase(text: Text, what: str, value: str, at: int) -> bool:
    """Insert `value` ("type") or erase as many characters ("erase") at character `at` (modulo
    the text's length) of `text`; False for any other `what` (nothing done)."""
    plain = str(text)
    if what == "type":
        text.insert(len(plain[: at % (len(plain) + 1)].encode()), value)
        return True
    if what == "erase":
        if plain:
            start = at % len(plain)
            del text[len(plain[:start].encode()) : len(plain[: start + len(value)].encode())]
        return True
    return False


def typed_inside_a_character() -> list[bytes]:
    """The three updates of a pycrdt document whose last one types inside a two-byte character
    (pycrdt counts a text's positions in UTF-8 bytes): its new characters name, as their right
    origin, an empty item only the writer has, with their own id."""
    doc: Doc[Any] = Doc()
    text = doc.get("lyrics", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text.insert(0, "-1 ")
    text.insert(3, "00\x80\n")  # U+0080: two bytes in UTF-8
    text.insert(6, "a ")  # between them
    return updates


def typed_inside_a_character_before_another_type(before: str = "track") -> list[bytes]:
    """Four updates of two pycrdt documents, in the order a log holds them: the last types
    inside a two-byte character typed by the other client, and names as its right origin that
    client's next clock, which is an item of another type, not of the text: a track's name
    (`before` "track"), or the first character of another root text ("notes"), a type at the
    same depth as the lyrics."""
    writer: Doc[Any] = Doc()
    other: Doc[Any] = Doc()
    updates: list[bytes] = []

    def edit(doc: Doc[Any], change: Any) -> None:
        state = doc.get_state()
        change(doc)
        updates.append(doc.get_update(state))

    edit(writer, lambda d: d.get("tracks", type=Array).append(Map({"id": "a", "name": "one"})))
    other.apply_update(updates[0])
    edit(other, lambda d: d.get("lyrics", type=Text).insert(0, "00\x80 "))  # U+0080: two bytes
    writer.apply_update(updates[1])
    if before == "track":
        edit(other, lambda d: d.get("tracks", type=Array)[0].__setitem__("name", "two"))
    else:
        edit(other, lambda d: d.get("notes", type=Text).insert(0, "n"))
    edit(writer, lambda d: d.get("lyrics", type=Text).insert(3, "a\n"))  # inside U+0080
    return updates
