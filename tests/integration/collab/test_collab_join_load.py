"""A cold join loads the project's room while its admission reads the members, not after; an
admission that fails unloads what it began to load, writes nothing, and a bad token loads
nothing at all."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from harness.waiting import eventually
from jacameno.collab.gatekeeper import MembershipGatekeeper
from jacameno.settings import Settings
from jacameno.settings.collab import CollabConfig
from projections.projects import ProjectState
from tests.integration.collab.support import Server, YClient, serving


@dataclass
class HeldMembers:
    """Wraps the projects read model: reading a project's state waits until `resume` is set."""

    projects: Any
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    resume: asyncio.Event = field(default_factory=asyncio.Event)

    async def state(self, project_id: str) -> ProjectState | None:
        self.asked.set()
        await self.resume.wait()
        state: ProjectState | None = await self.projects.state(project_id)
        return state


def _hold_members(server: Server) -> HeldMembers:
    gatekeeper = server.rooms.gatekeeper
    assert isinstance(gatekeeper, MembershipGatekeeper)
    held = HeldMembers(gatekeeper._projects)
    gatekeeper._projects = held  # type: ignore[assignment]
    return held


async def test_the_room_loads_while_the_admission_reads_the_members(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    held = _hold_members(server)
    loads = server.rooms.loads
    connecting = asyncio.create_task(server.client(project, alice))
    await eventually(held.asked.is_set)
    # Loaded while the members are still being read: the join waits for one of the two only.
    await eventually(lambda: server.rooms.loaded(project) is not None)
    assert not connecting.done()
    held.resume.set()
    client = await connecting
    await client.sync()
    assert server.rooms.loads == loads + 1
    assert server.rooms.loaded(project) is not None
    await client.close()


async def test_a_refused_join_unloads_the_room_it_began_to_load(settings: Settings) -> None:
    # At once: not after the unload delay, which would let one token hold many rooms.
    async with serving(settings, CollabConfig(unload_delay=600)) as server:
        alice, mallory = await server.user("alice"), await server.user("mallory")
        project = await server.project(alice)
        before = await server.events(project)
        stranger = await server.client(project, mallory)
        assert await stranger.wait_closed() == 4403
        await eventually(lambda: project not in server.rooms)
        assert await server.events(project) == before  # no session, no snapshot
        # The same for a project that does not exist: nothing is written under its name.
        nowhere = str(uuid.uuid4())
        lost = await server.client(nowhere, mallory)
        assert await lost.wait_closed() == 4404
        await eventually(lambda: nowhere not in server.rooms)
        assert await server.events(nowhere) == []
        # A room loaded for a member's join stays the unload delay after it leaves.
        member = await server.client(project, alice)
        await member.sync()
        room = server.rooms.loaded(project)
        assert room is not None
        await member.close()
        await eventually(lambda: not room.peers)
        assert server.rooms.loaded(project) is room
        assert room in server.rooms.live()  # not closing: it waits the unload delay


async def test_a_bad_token_loads_nothing(server: Server) -> None:
    alice = await server.user("alice")
    project = await server.project(alice)
    loads = server.rooms.loads
    forged = YClient(server, project, alice.token[:-4] + "AAAA")
    await forged.connect()
    assert await forged.wait_closed() == 4401
    assert project not in server.rooms
    assert server.rooms.loads == loads


async def test_a_member_joins_while_a_stranger_is_refused(server: Server) -> None:
    alice, mallory = await server.user("alice"), await server.user("mallory")
    project = await server.project(alice)
    held = _hold_members(server)
    stranger_connecting = asyncio.create_task(server.client(project, mallory))
    member_connecting = asyncio.create_task(server.client(project, alice))
    await eventually(held.asked.is_set)
    held.resume.set()
    stranger, member = await stranger_connecting, await member_connecting
    assert await stranger.wait_closed() == 4403
    await member.sync()
    assert member.close_code is None
    assert server.rooms.loaded(project) is not None
    await member.close()
