"""A member's role in a project, and who may write."""

from __future__ import annotations

from typing import Literal

Role = Literal["owner", "editor", "viewer"]

OWNER: Role = "owner"
EDITOR: Role = "editor"
VIEWER: Role = "viewer"
ROLES: tuple[Role, ...] = (OWNER, EDITOR, VIEWER)
WRITERS: frozenset[Role] = frozenset({OWNER, EDITOR})

_BY_NAME: dict[str, Role] = {role: role for role in ROLES}


def parse_role(name: object) -> Role | None:
    """The role `name` spells; None for anything this server does not know."""
    return _BY_NAME.get(str(name))


def can_write(role: str) -> bool:
    return role in WRITERS
