"""What `jacameno serve` builds on the core (jacameno.bootstrap.core): Redis with its circuit,
the rate limiter, accounts and tokens, the collaboration rooms, the project and asset commands,
each by
a small builder, composed by `services`. The HTTP app (jacameno.app) hands each route the part it
needs."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from jacameno.accounts import Accounts, User
from jacameno.assets.service import Assets
from jacameno.auth.passwords import Passwords
from jacameno.auth.sessions import DatabaseSessionStore, RefreshTokens
from jacameno.auth.tokens import AccessTokens
from jacameno.bearer import Authenticator
from jacameno.bootstrap.core import Core, assets, closing, core
from jacameno.bus.redis import RedisBus
from jacameno.catalog.service import Catalog
from jacameno.circuit import Circuit
from jacameno.coalesce import Coalesced
from jacameno.collab.gatekeeper import MembershipGatekeeper
from jacameno.collab.ledger import EarlyLedger
from jacameno.collab.lobby import Lobby
from jacameno.collab.membership import MembershipFollower
from jacameno.collab.rooms import Rooms, node_name
from jacameno.collab.timings import Timings
from jacameno.documents import analysis
from jacameno.jobs.feed import ProjectFeed
from jacameno.jobs.queue import JobQueue
from jacameno.jobs.service import Jobs
from jacameno.metrics import Metrics
from jacameno.projects.locks import PostgresTurns, ProcessTurns, Turns
from jacameno.projects.service import Projects
from jacameno.ratelimit import FallbackRateLimiter, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from jacameno.settings import Settings, signing_key
from projections.assets import AssetsReadModel
from projections.blame import Blames
from projections.blame_checkpoints import Checkpoints
from projections.catalog_reads import CatalogReadModel
from projections.jobs import JobsReadModel
from projections.projects import PROJECTS, ProjectsReadModel
from projections.runner import Projection
from sqldb import open_database


@dataclass(frozen=True, slots=True)
class RedisLink:
    """The REST API's Redis client and the circuit its calls share."""

    client: Redis
    circuit: Circuit


@contextlib.asynccontextmanager
async def redis(settings: Settings, metrics: Metrics) -> AsyncIterator[RedisLink | None]:
    """The REST API's link to Redis; None without Redis (a single node)."""
    if settings.redis_url is None:
        yield None
        return
    # Bounded calls and one quick retry (a pooled connection that a Redis restart closed): Redis
    # is never waited on for long (docs/operations.md, "Redis outage").
    timeout = settings.redis_timeout_ms / 1000
    client = Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )
    try:
        yield RedisLink(
            client, Circuit("redis", settings.redis_retry_seconds, on_change=metrics.redis_up)
        )
    finally:
        await client.aclose()


def rate_limiter(link: RedisLink | None, metrics: Metrics) -> RateLimiter:
    """Counts in Redis, shared by every node, and in process while Redis fails; in process only
    without Redis."""
    if link is None:
        return MemoryRateLimiter()
    return FallbackRateLimiter(
        RedisRateLimiter(link.client),
        MemoryRateLimiter(),
        link.circuit,
        on_fallback=metrics.ratelimit_fallbacks.inc,
    )


@contextlib.asynccontextmanager
async def turns(settings: Settings) -> AsyncIterator[Turns]:
    """Project commands take turns per project: across nodes on Postgres, in process on SQLite
    (one node)."""
    if settings.database_kind != "postgres":
        yield ProcessTurns()
        return
    async with closing(PostgresTurns.open(settings.database_url)) as held:
        yield held


@dataclass(frozen=True, slots=True)
class Identity:
    """Accounts and their tokens. `authenticator` is the one check of an access token, for the
    REST API and the collaboration sockets alike."""

    passwords: Passwords
    accounts: Accounts
    users: Coalesced[str, User]  # accounts' reads by id, concurrent ones made as one
    access_tokens: AccessTokens
    authenticator: Authenticator
    refresh_tokens: RefreshTokens


def identity(base: Core) -> Identity:
    """Accounts and tokens; refresh sessions live in the database even with Redis: they must
    outlive Redis restarts."""
    settings = base.settings
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    accounts = Accounts(base.db, passwords, base.store)
    secret = signing_key(settings)
    access_tokens = AccessTokens(secret, settings.access_token_seconds)
    refresh_tokens = RefreshTokens(
        DatabaseSessionStore(base.db),
        secret,
        settings.refresh_token_seconds,
        settings.refresh_grace_seconds,
    )
    users = Coalesced(accounts.get_many)  # token checks at once: one read
    authenticator = Authenticator(access_tokens, users)
    return Identity(passwords, accounts, users, access_tokens, authenticator, refresh_tokens)


@dataclass(frozen=True, slots=True)
class Live:
    """Live collaboration on this node: the rooms, the sockets waiting to authenticate, and the
    follower that revises the rooms' members from the log."""

    rooms: Rooms
    lobby: Lobby
    membership: MembershipFollower


def reactions(analyses: analysis.Binding) -> list[Projection]:
    """The projections serve adds to the read models: its reactions to the log that write into
    live documents through the rooms (`analyses`, bound once the rooms exist). Wherever the
    projections run (`jacameno serve`, or `jacameno projections run`), these run with them."""
    return [analysis.results_projection(analyses)]


@contextlib.asynccontextmanager
async def live_rooms(
    base: Core, who: Identity, reads: ProjectsReadModel, timings: Timings | None = None
) -> AsyncIterator[Rooms]:
    """This node's rooms, started (publishing what they commit to the other nodes through
    Redis, if any), reporting to `timings`; closed on exit."""
    config = base.settings.collab
    node = node_name()
    redis_url = base.settings.redis_url
    # Several nodes share one Redis; a single node without one publishes nothing.
    bus = (
        None
        if redis_url is None
        else RedisBus(redis_url, name=node, max_backoff=config.bus_max_backoff)
    )
    gatekeeper = MembershipGatekeeper(
        who.authenticator, who.users, reads, trusted_for=config.admission_trusted_seconds
    )
    ledger = await early_ledger(base) if config.early_broadcast else None
    built = Rooms(base.store, gatekeeper, config, node, bus, timings, ledger)
    built.start()
    try:
        yield built
    finally:
        await built.close()
        if ledger is not None:
            await ledger.close()


async def early_ledger(base: Core) -> EarlyLedger:
    """Where the on-receipt mode records what it sends early: a table of the Postgres database,
    or an SQLite file of its own beside the database (jacameno.collab.ledger)."""
    keep = base.settings.collab.early_records_seconds
    if base.db.kind == "postgres":
        # Written on a connection of its own, which it holds while edits come (read through
        # the node's pool, never waiting for that one).
        writer = await open_database(base.settings.database_url, pool_size=1)
        try:
            return await EarlyLedger.open(base.db, keep_seconds=keep, writer=writer)
        except BaseException:
            await writer.close()
            raise
    path = base.settings.sqlite_path
    return await EarlyLedger.open_file(path.with_name(path.name + ".early"), keep_seconds=keep)


@contextlib.asynccontextmanager
async def collaboration(
    base: Core, who: Identity, reads: ProjectsReadModel, metrics: Metrics
) -> AsyncIterator[Live]:
    """This node's rooms, started, and the membership follower; both stopped on exit."""
    config = base.settings.collab
    timings = Timings(
        metrics.collab_ack.observe, metrics.collab_append.observe, metrics.collab_join.observe
    )
    async with contextlib.AsyncExitStack() as stack:
        rooms = await stack.enter_async_context(live_rooms(base, who, reads, timings))
        # From the read model's checkpoint, not the head: a change the read model has not
        # applied yet may still let a socket in on the old membership.
        membership = MembershipFollower(
            base.store,
            rooms.apply_membership,
            min(status.position for status in await base.runner.status()),
            # a membership change is settled once the read model the gatekeeper asks has it
            settled=lambda position: base.runner.wait_for(position, only=(PROJECTS,)),
            interval=config.follow_interval,
        )
        membership.start()
        stack.push_async_callback(membership.stop)
        yield Live(rooms, Lobby(config.max_unauthenticated_sockets), membership)


@dataclass(frozen=True, slots=True)
class Services:
    """Everything `jacameno serve` runs, built by `services` and closed when it exits."""

    core: Core
    redis: RedisLink | None
    limiter: RateLimiter
    identity: Identity
    live: Live
    projects: Projects
    metrics: Metrics
    assets: Assets
    catalog: Catalog
    jobs: Jobs
    feed: ProjectFeed  # a project's job and asset events as they are logged (SSE)
    blames: Blames  # blame's replays kept, its checkpoints, and those made in the background


def jobs(base: Core) -> Jobs:
    """AI jobs as the API asks for them: requested, read, cancelled."""
    config = base.settings.ai
    queue = JobQueue(base.db, lease=config.lease, max_attempts=config.max_attempts)
    return Jobs(base.store, base.runner, JobsReadModel(base.db), queue, AssetsReadModel(base.db))


@contextlib.asynccontextmanager
async def services(settings: Settings, metrics: Metrics) -> AsyncIterator[Services]:
    """Everything `jacameno serve` runs, closed in the reverse order of its building."""
    # AI analyses go into the documents through this node's rooms, built after the runner.
    analyses = analysis.Binding()
    async with (
        core(settings, extra=reactions(analyses)) as base,
        turns(settings) as project_turns,
        redis(settings, metrics) as link,
    ):
        who = identity(base)
        reads = ProjectsReadModel(base.db)
        async with (
            collaboration(base, who, reads, metrics) as live,
            contextlib.AsyncExitStack() as stack,
        ):
            analyses.bind(live.rooms, base.db)
            projects = Projects(
                base.store, base.runner, reads, followers=[live.membership], turns=project_turns
            )
            catalog = Catalog(
                base.store,
                base.runner,
                CatalogReadModel(base.db),
                reads,
                AssetsReadModel(base.db),
                turns=project_turns,
            )
            feed = ProjectFeed(base.store)
            stack.push_async_callback(feed.close)
            above = settings.blame_background_above
            blames = Blames(base.store, Checkpoints(base.db), background_above=above or None)
            stack.push_async_callback(blames.close)
            yield Services(
                base,
                link,
                rate_limiter(link, metrics),
                who,
                live,
                projects,
                metrics,
                assets(base, reads),
                catalog,
                jobs(base),
                feed,
                blames,
            )
