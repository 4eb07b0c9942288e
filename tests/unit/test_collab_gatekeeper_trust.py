"""What a read of a user or of a project's members lets in without reading again
(MembershipGatekeeper, `trusted_for`): only admissions; every refusal is decided on a fresh
read, and what takes access away (`changed`) or time (`trusted_for`) ends the trust."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

import pytest

from harness.waiting import eventually
from jacameno.accounts import Accounts, User
from jacameno.auth.tokens import AccessTokens
from jacameno.bearer import Authenticator
from jacameno.collab.errors import Forbidden, NoSuchProject, Unauthenticated
from jacameno.collab.gatekeeper import MembershipGatekeeper
from projections.projects import ProjectsReadModel, ProjectState

PROJECT = "0b0f7c4e-6f3a-4a53-9d8f-2f8a2f0f7a01"
OTHER = "5d2c1a8e-3b4f-4e6a-8c9d-0e1f2a3b4c5d"
SECRET = "s" * 64


@dataclass
class Members:
    """The projects read model: `roles` by project as they are when a read ends (a read waits
    for `opened`); `deleted` projects. With `accounts`, a read also says which members have
    one (as the real read model does); without, it does not say."""

    roles: dict[str, dict[str, str]]
    deleted: set[str] = field(default_factory=set)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    reads: int = 0
    accounts: set[str] | None = None

    def __post_init__(self) -> None:
        self.opened.set()

    async def state(self, project_id: str) -> ProjectState | None:
        self.reads += 1
        await self.opened.wait()
        if project_id not in self.roles:
            return None
        roles = dict(self.roles[project_id])
        accounts = None if self.accounts is None else frozenset(roles.keys() & self.accounts)
        return ProjectState(project_id, "t", 1, project_id in self.deleted, roles, accounts)


@dataclass
class Users:
    """Accounts: the users in `ids` exist."""

    ids: set[str]
    reads: int = 0

    async def get(self, user_id: str) -> User | None:
        self.reads += 1
        if user_id not in self.ids:
            return None
        return User(user_id, f"{user_id}@example.com", user_id, None, {}, 0, 0)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    members: Members
    users: Users
    clock: Clock
    gatekeeper: MembershipGatekeeper
    tokens: AccessTokens

    async def admit(self, user_id: str, project_id: str = PROJECT) -> str:
        access = await self.gatekeeper.admit(project_id, self.tokens.issue(user_id))
        return access.role

    @property
    def reads(self) -> tuple[int, int]:
        """(reads of users, reads of members) so far."""
        return self.users.reads, self.members.reads


def _world(trusted_for: float = 10.0, accounts: bool = False) -> World:
    """Ann and Bob members, Cid not; the members' read says who has an account if `accounts`."""
    members = Members({PROJECT: {"ann": "editor", "bob": "viewer"}, OTHER: {"ann": "owner"}})
    users = Users({"ann", "bob", "cid"})
    if accounts:
        members.accounts = users.ids  # the same set: a deleted user is gone from both
    clock = Clock()
    tokens = AccessTokens(SECRET, ttl_seconds=3600)
    gatekeeper = MembershipGatekeeper(
        Authenticator(tokens, users),
        cast(Accounts, users),
        cast(ProjectsReadModel, members),
        trusted_for=trusted_for,
        clock=clock,
    )
    return World(members, users, clock, gatekeeper, tokens)


async def test_a_join_after_a_read_reads_nothing_more() -> None:
    world = _world()
    assert await world.admit("ann") == "editor"
    assert world.reads == (1, 1)
    assert await world.admit("ann") == "editor"
    assert await world.admit("bob") == "viewer"  # another member: only his user is read
    assert world.reads == (2, 1)
    assert await world.admit("ann", OTHER) == "owner"  # another project: only its members
    assert world.reads == (2, 2)


async def test_trust_ends_after_trusted_for() -> None:
    world = _world(trusted_for=10.0)
    await world.admit("ann")
    world.clock.now += 9.9
    await world.admit("ann")
    assert world.reads == (1, 1)
    world.clock.now += 0.2
    await world.admit("ann")
    assert world.reads == (2, 2)


async def test_a_refusal_is_decided_on_a_fresh_read() -> None:
    world = _world()
    await world.admit("ann")
    # cid becomes a member after the members were read: let in at once, on a fresh read
    world.members.roles[PROJECT]["cid"] = "editor"
    assert await world.admit("cid") == "editor"
    assert world.members.reads == 2
    world.users.ids.add("dan")
    for reads in (3, 4):  # dan is a member on no read: each refusal reads again
        with pytest.raises(Forbidden):
            await world.admit("dan")
        assert world.members.reads == reads


@pytest.mark.parametrize("accounts", [False, True], ids=["users-read", "members-read"])
async def test_a_change_that_takes_access_away_forgets_the_read(accounts: bool) -> None:
    world = _world(accounts=accounts)
    await world.admit("bob")
    del world.members.roles[PROJECT]["bob"]  # the read model has it, then the rooms hear of it
    world.gatekeeper.changed(PROJECT)
    with pytest.raises(Forbidden):
        await world.admit("bob")
    world.members.deleted.add(PROJECT)
    world.gatekeeper.changed(PROJECT)
    with pytest.raises(NoSuchProject):
        await world.admit("ann")


@pytest.mark.parametrize("accounts", [False, True], ids=["users-read", "members-read"])
async def test_a_deleted_user_is_read_again(accounts: bool) -> None:
    world = _world(accounts=accounts)
    await world.admit("ann")
    await world.admit("ann", OTHER)
    world.users.ids.discard("ann")
    world.gatekeeper.changed(None)  # a deleted user: every project, every user
    with pytest.raises(Unauthenticated):
        await world.admit("ann")
    with pytest.raises(Unauthenticated):
        await world.admit("ann", OTHER)


async def test_a_read_that_may_predate_a_change_is_not_kept() -> None:
    world = _world()
    world.members.opened.clear()
    first = asyncio.create_task(world.admit("bob"))
    await eventually(lambda: world.members.reads == 1)
    world.gatekeeper.changed(PROJECT)  # bob's removal, heard while the read was under way
    world.members.opened.set()
    assert await first == "viewer"  # this fake answers as it was
    del world.members.roles[PROJECT]["bob"]
    with pytest.raises(Forbidden):
        await world.admit("bob")
    assert world.members.reads == 2


async def test_a_member_the_members_read_finds_an_account_for_is_let_in_on_it_alone() -> None:
    world = _world(accounts=True)
    assert await world.admit("ann") == "editor"
    assert world.reads == (0, 1)
    assert await world.admit("ann") == "editor"  # found lately, on a read trusted still
    assert world.reads == (0, 1)
    assert await world.admit("ann", OTHER) == "owner"
    assert world.reads == (0, 2)
    # A read trusted from earlier does not vouch for an account: it may predate its deletion.
    assert await world.admit("bob") == "viewer"
    assert world.reads == (1, 2)


async def test_a_member_deleted_after_a_trusted_read_of_the_members_is_refused() -> None:
    world = _world(accounts=True)
    await world.admit("ann")
    world.users.ids.discard("bob")  # the membership follower has not heard of it yet
    with pytest.raises(Unauthenticated):
        await world.admit("bob")


async def test_joiners_at_once_wait_for_one_read_of_the_members_and_none_of_a_user() -> None:
    world = _world(accounts=True)
    world.members.opened.clear()
    joins = [asyncio.create_task(world.admit(u)) for u in ("ann", "bob", "ann")]
    await eventually(lambda: world.members.reads == 1)
    world.members.opened.set()
    assert await asyncio.gather(*joins) == ["editor", "viewer", "editor"]
    assert world.reads == (0, 1)


async def test_without_an_account_a_member_or_a_stranger_is_refused_as_a_bad_token() -> None:
    world = _world(accounts=True)
    world.users.ids.discard("bob")  # deleted before anything was read
    with pytest.raises(Unauthenticated):
        await world.admit("bob")
    with pytest.raises(Unauthenticated):
        await world.admit("eve", OTHER)  # signed for a user who never was
    with pytest.raises(Forbidden):
        await world.admit("cid")  # an account, but no member
    assert world.users.reads == 3  # each refusal read its user


async def test_a_recheck_reads_the_user_only_if_the_members_read_did_not_find_them() -> None:
    world = _world(accounts=True)
    access = await world.gatekeeper.admit(PROJECT, world.tokens.issue("bob"))
    assert (await world.gatekeeper.recheck(PROJECT, access)).role == "viewer"
    assert world.reads == (0, 2)  # a recheck reads the members again, never trusted
    world.users.ids.discard("bob")
    with pytest.raises(Unauthenticated):
        await world.gatekeeper.recheck(PROJECT, access)
    assert world.reads == (1, 3)


async def test_a_users_deletion_heard_during_the_members_read_makes_it_vouch_for_none() -> None:
    world = _world(accounts=True)
    world.members.opened.clear()
    joining = asyncio.create_task(world.admit("bob"))
    await eventually(lambda: world.members.reads == 1)
    world.gatekeeper.changed(None)  # a user deleted (this fake's read still finds bob's account)
    world.members.opened.set()
    assert await joining == "viewer"
    assert world.users.reads == 1  # so bob's user was read


async def test_another_projects_change_during_the_members_read_leaves_it_vouching() -> None:
    world = _world(accounts=True)
    world.members.opened.clear()
    joining = asyncio.create_task(world.admit("bob"))
    await eventually(lambda: world.members.reads == 1)
    world.gatekeeper.changed(OTHER)
    world.members.opened.set()
    assert await joining == "viewer"
    assert world.users.reads == 0


async def test_a_recheck_whose_members_read_a_users_deletion_came_during_reads_the_user() -> None:
    world = _world(accounts=True)
    access = await world.gatekeeper.admit(PROJECT, world.tokens.issue("bob"))
    world.members.opened.clear()
    checking = asyncio.create_task(world.gatekeeper.recheck(PROJECT, access))
    await eventually(lambda: world.members.reads == 2)
    world.gatekeeper.changed(None)  # a user deleted (this fake's read still finds bob's account)
    world.members.opened.set()
    assert (await checking).role == "viewer"
    assert world.users.reads == 1
