"""Random edits of a Y.Text for property tests: pycrdt indexes a text by UTF-8 bytes, so a
character position in the plain string is turned into its byte offset."""

from __future__ import annotations

from pycrdt import Text


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
