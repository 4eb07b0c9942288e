"""docs/api.md's table of field limits says what the request schemas accept."""

from __future__ import annotations

import re
from pathlib import Path

from jacameno.http import schemas

DOC = Path(__file__).parents[2] / "docs" / "api.md"


def limits_table() -> dict[str, str]:
    text = DOC.read_text()
    section = text.split("## Field limits", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| `")]
    return {cells[0].strip().strip("`"): cells[2].strip() for cells in rows}


def span(schema: schemas.Schema) -> str:
    return f"{schema['minLength']}-{schema['maxLength']} characters"


def test_the_documented_text_limits_are_the_schemas() -> None:
    table = limits_table()
    assert table["email"].startswith(span(schemas.EMAIL))
    assert table["password"].startswith(span(schemas.PASSWORD))
    assert table["display_name"] == span(schemas.DISPLAY_NAME)
    assert table["title"] == span(schemas.TITLE)
    assert f"at most {schemas.AVATAR_URL['maxLength']} characters" in table["avatar_url"]


def test_the_documented_preferences_and_roles_are_the_schemas() -> None:
    table = limits_table()
    prefs = schemas.PREFERENCES
    names = prefs["propertyNames"]
    assert f"at most {prefs['maxProperties']} names" in table["preferences"]
    assert f"({names['minLength']}-{names['maxLength']} characters)" in table["preferences"]
    assert f"at most {schemas.PREFERENCES_MAX_BYTES // 1024} KiB" in table["preferences"]
    text_value = prefs["additionalProperties"]["anyOf"][0]
    assert f"text up to {text_value['maxLength']} characters" in table["preferences"]
    assert re.findall(r"`(\w+)`", table["role"]) == schemas.ROLE["enum"]
