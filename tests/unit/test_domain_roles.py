"""Roles: what the server knows, and who writes."""

from __future__ import annotations

from domain.roles import EDITOR, OWNER, ROLES, VIEWER, can_write, parse_role


def test_known_roles_parse_and_others_give_none() -> None:
    assert [parse_role(name) for name in ("owner", "editor", "viewer")] == list(ROLES)
    assert [parse_role(name) for name in ("admin", "", None, "Owner")] == [None] * 4


def test_owners_and_editors_write_viewers_do_not() -> None:
    assert [can_write(role) for role in (OWNER, EDITOR, VIEWER)] == [True, True, False]
    assert not can_write("admin")
