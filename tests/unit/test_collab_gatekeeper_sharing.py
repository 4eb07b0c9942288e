"""Concurrent admissions to one project share one read of its members (MembershipGatekeeper),
and a membership change ends the sharing of a read that may predate it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from harness.waiting import eventually
from jacameno.accounts import Accounts
from jacameno.bearer import Authenticator
from jacameno.collab.errors import Forbidden
from jacameno.collab.gatekeeper import Access, MembershipGatekeeper
from projections.projects import ProjectsReadModel, ProjectState

PROJECT = "0b0f7c4e-6f3a-4a53-9d8f-2f8a2f0f7a01"


@dataclass
class Members:
    """A read model whose reads wait for `opened` and answer `roles` as they are then."""

    roles: dict[str, str]
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    reads: int = 0

    async def state(self, project_id: str) -> ProjectState:
        self.reads += 1
        await self.opened.wait()
        return ProjectState(project_id, "t", 1, False, dict(self.roles))


class Users:
    """Accounts that all exist; `asked` counts the reads of a user (a recheck makes one after
    the members' read, which here does not say who has an account)."""

    def __init__(self) -> None:
        self.asked = 0

    async def get(self, user_id: str) -> object:
        self.asked += 1
        return object()


def _gatekeeper(members: Members, users: Users | None = None) -> MembershipGatekeeper:
    return MembershipGatekeeper(
        cast(Authenticator, None),
        cast(Accounts, users or Users()),
        cast(ProjectsReadModel, members),
    )


def _access(user: str) -> Access:
    return Access(user, "viewer", 0)


async def test_concurrent_rechecks_share_one_read() -> None:
    members = Members({f"u{i}": "editor" for i in range(50)})
    gatekeeper = _gatekeeper(members)
    checks = [asyncio.create_task(gatekeeper.recheck(PROJECT, _access(f"u{i}"))) for i in range(50)]
    await eventually(lambda: members.reads == 1)
    members.opened.set()
    decided = await asyncio.gather(*checks)
    assert members.reads == 1
    assert {a.role for a in decided} == {"editor"}


async def test_a_change_ends_the_sharing_of_a_read_that_may_predate_it() -> None:
    members = Members({"bob": "editor"})
    gatekeeper = _gatekeeper(members)
    before = asyncio.create_task(gatekeeper.recheck(PROJECT, _access("bob")))
    await eventually(lambda: members.reads == 1)
    members.roles = {}  # bob removed; the read model has it, then the rooms hear of it
    gatekeeper.changed(PROJECT)
    after = asyncio.create_task(gatekeeper.recheck(PROJECT, _access("bob")))
    await eventually(lambda: members.reads == 2)
    members.opened.set()
    for check in (after, before):  # (this fake answers both as it is when they end)
        with pytest.raises(Forbidden):
            await check


async def test_a_caller_that_gives_up_leaves_the_read_to_the_others() -> None:
    members, users = Members({"a": "owner", "b": "editor"}), Users()
    gatekeeper = _gatekeeper(members, users)
    first = asyncio.create_task(gatekeeper.recheck(PROJECT, _access("a")))
    second = asyncio.create_task(gatekeeper.recheck(PROJECT, _access("b")))
    # Tasks created together begin in the same turn, and a recheck pauses first on the
    # members' read: once it is under way, both wait on it.
    await eventually(lambda: members.reads == 1)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    members.opened.set()
    decided: Any = await second
    assert decided.role == "editor"
    assert members.reads == 1
