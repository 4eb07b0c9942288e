"""What `jacameno projections run` builds: the core, leading every projection the serving nodes
would run (the read models and serve's reactions, jacameno.bootstrap.serving.reactions), and
rooms of its own without sockets, through which the AI analyses are written into the documents
and reach the serving nodes' collaborators over Redis (a node like any other, that no client
joins). The serving nodes beside it run with `JACAMENO_PROJECTIONS=standby`
(docs/operations.md, "A projection process")."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from jacameno.bootstrap.core import Core, check_schema, core
from jacameno.bootstrap.serving import identity, live_rooms, reactions
from jacameno.documents import analysis
from jacameno.settings import Settings
from projections.projects import ProjectsReadModel


class CannotProject(Exception):
    """The settings do not allow a projection process (the message says why and what to do)."""


def check(settings: Settings) -> None:
    """CannotProject unless a projection process can run beside serving nodes: on Postgres (on
    SQLite the locks are the process's own, so it and a server could both fold the log), with
    Redis (its AI edits must reach the serving nodes' rooms)."""
    if settings.database_kind == "sqlite":
        raise CannotProject(
            "`projections run` needs Postgres: on SQLite the server runs the projections itself"
            " (its locks are held in its process, so a second process would fold the log too)"
        )
    if settings.redis_url is None:
        raise CannotProject(
            "`projections run` needs JACAMENO_REDIS_URL: the AI analyses it writes into the"
            " documents reach the serving nodes' collaborators through Redis"
        )


@contextlib.asynccontextmanager
async def projection_node(settings: Settings) -> AsyncIterator[Core]:
    """Every projection, led from this process (whatever `JACAMENO_PROJECTIONS` says: that
    setting is the serving nodes'), following the log until exit; CannotProject first if
    `check` refuses, MigrationError if the schema lags as `jacameno serve` would refuse it."""
    check(settings)
    await check_schema(settings)
    settings = dataclasses.replace(settings, projections="run")
    analyses = analysis.Binding()
    async with core(settings, extra=reactions(analyses)) as base:
        reads = ProjectsReadModel(base.db)
        async with live_rooms(base, identity(base), reads) as rooms:
            analyses.bind(rooms, base.db)
            yield base
