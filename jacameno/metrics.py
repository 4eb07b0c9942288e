"""Prometheus metrics of one app instance, in its own registry (served at `/metrics`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from dbdrivers.sqlite import READS
from projections.lag import ProjectionStatus

ACTIVE_WINDOW_SECONDS = 300.0
# The event loop's lag is how late a ticker of this period wakes up: whatever held the loop (a
# long CRDT step, a GC pause, a burst of frames) delays every socket of the node by as much.
LOOP_TICK_SECONDS = 0.1
# Fine below 10 ms, where a durable acknowledgement and a commit usually are, so that a p99 read
# from the buckets is not a coarse bound.
LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.00075, 0.001, 0.00125, 0.0015, 0.00175, 0.002, 0.0025, 0.003, 0.0035,
    0.004, 0.005, 0.006, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "jacameno_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.errors = Counter(
            "jacameno_http_errors_total",
            "HTTP responses with a 4xx or 5xx status, by route template and error code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._redis_up: Gauge | None = None
        self.ratelimit_fallbacks = Counter(
            "jacameno_ratelimit_fallbacks_total",
            "Rate-limit checks counted in this process because Redis was unavailable.",
            registry=self.registry,
        )
        self._projection_gauges = (
            Gauge(
                "jacameno_projection_lag_events",
                "Log positions between the head and what the projection has applied.",
                ["projection"],
                registry=self.registry,
            ),
            Gauge(
                "jacameno_projection_lag_seconds",
                "Seconds since the oldest event the projection has not applied was recorded.",
                ["projection"],
                registry=self.registry,
            ),
            Gauge(
                "jacameno_projection_failures_total",
                "Events the projection skipped and recorded in projection_failures, not retried"
                " successfully yet.",
                ["projection"],
                registry=self.registry,
            ),
            Gauge(
                "jacameno_projection_events_per_second",
                "Events the projection applied per second over the last minute, on this node"
                " (0 where another node is its active runner).",
                ["projection"],
                registry=self.registry,
            ),
            Gauge(
                "jacameno_projection_active",
                "1 where this node is the projection's active runner (or rebuilds it), else 0.",
                ["projection"],
                registry=self.registry,
            ),
        )
        self._projection_names: set[str] = set()
        self._seen: dict[str, float] = {}
        Gauge(
            "jacameno_active_users",
            f"Distinct users with an authenticated request in the last {ACTIVE_WINDOW_SECONDS:g}s.",
            registry=self.registry,
        ).set_function(self.active_users)

        self.loop_lag = Histogram(
            "jacameno_event_loop_lag_seconds",
            f"How late the event loop woke a {LOOP_TICK_SECONDS:g} s ticker: what every socket"
            " and request of the node waited behind other work.",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.gc_pause = Histogram(
            "jacameno_gc_pause_seconds",
            "Each collection of Python's garbage collector, by generation (2: a full one): the"
            " event loop, and every socket and request of the node, wait for it.",
            ["generation"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
        )
        self._gc_pauses = [self.gc_pause.labels(str(generation)) for generation in range(3)]
        self._gc_began = 0.0
        Gauge(
            "jacameno_gc_frozen_objects",
            "Objects the garbage collector leaves aside for good: what the served process held"
            " once started (jacameno.server.freeze_heap).",
            registry=self.registry,
        ).set_function(gc.get_freeze_count)

        self.registry.register(_SQLiteReads())

        self.collab_ack = Histogram(
            "jacameno_collab_ack_seconds",
            "From an update's frame reaching the server to its durable acknowledgement handed to"
            " the sender's socket (logged updates only).",
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.collab_join = Histogram(
            "jacameno_collab_join_seconds",
            "From a socket's way into a document reaching the server (a y-websocket upgrade"
            " request, a Hocuspocus authentication) to the document handed to it (sync step 2).",
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.collab_append = Histogram(
            "jacameno_collab_append_seconds",
            "Each append of a room's pending updates to the log, from the call to its answer.",
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )

    @contextlib.asynccontextmanager
    async def watching_loop(self, tick: float = LOOP_TICK_SECONDS) -> AsyncIterator[None]:
        """Observe the running loop's lag into `jacameno_event_loop_lag_seconds`, and the
        garbage collector's pauses into `jacameno_gc_pause_seconds`, until the block ends."""
        task = asyncio.create_task(self._watch_loop(tick), name="metrics-loop-lag")
        gc.callbacks.append(self._collected)
        try:
            yield
        finally:
            gc.callbacks.remove(self._collected)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        # Called by the collector before and after each collection, on whichever thread
        # triggered it (it holds the GIL, so collections never overlap).
        if phase == "start":
            self._gc_began = time.perf_counter()
        elif self._gc_began:  # (not a collection already under way when watching began)
            self._gc_pauses[info["generation"]].observe(time.perf_counter() - self._gc_began)
            self._gc_began = 0.0

    async def _watch_loop(self, tick: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + tick
            await asyncio.sleep(tick)
            self.loop_lag.observe(max(0.0, loop.time() - due))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.request_seconds.labels(method, route, str(status)).observe(seconds)
        if status >= 400:
            self.errors.labels(method, route, str(status)).inc()

    def redis_up(self, up: bool) -> None:
        """`jacameno_redis_up`: exported only by nodes configured with Redis."""
        if self._redis_up is None:
            self._redis_up = Gauge(
                "jacameno_redis_up",
                "1 while the REST API's Redis answers, 0 while the API runs degraded without it.",
                registry=self.registry,
            )
        self._redis_up.set(1 if up else 0)

    def projections(self, statuses: Sequence[ProjectionStatus]) -> None:
        """Set the projection gauges from the runner's status (read when `/metrics` is)."""
        lag_events, lag_seconds, failures, rate, active = self._projection_gauges
        for status in statuses:
            lag_events.labels(status.name).set(status.lag_positions)
            lag_seconds.labels(status.name).set(status.seconds_behind)
            failures.labels(status.name).set(status.failures)
            rate.labels(status.name).set(status.events_per_second or 0.0)
            running = status.state in ("following", "rebuilding") or (
                status.state == "failing" and status.events_per_second is not None
            )
            active.labels(status.name).set(1 if running else 0)
        names = {status.name for status in statuses}
        for gone in self._projection_names - names:  # a rebuild that ended
            for gauge in self._projection_gauges:
                gauge.remove(gone)
        self._projection_names = names

    def saw_user(self, user_id: str) -> None:
        self._seen[user_id] = time.monotonic()

    def active_users(self) -> int:
        horizon = time.monotonic() - ACTIVE_WINDOW_SECONDS
        for user_id in [u for u, at in self._seen.items() if at < horizon]:
            del self._seen[user_id]
        return len(self._seen)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SQLiteReads(Collector):
    """`jacameno_sqlite_reads_total{outcome}`: where the SQLite reads of this process were made
    (dbdrivers.sqlite.LoopFirstReader). Many `overran` mean reads longer than the loop's budget
    (large pages, analysts' queries); a loop read the disk held shows as event loop lag."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "jacameno_sqlite_reads",
            "SQLite reads by where they were made: loop (on the event loop), overran (stopped"
            " past the loop's budget, made in the reader thread), refused (met a lock or wrote:"
            " made in the thread), thread (no budget).",
            labels=["outcome"],
        )
        for outcome, count in dataclasses.asdict(READS).items():
            family.add_metric([outcome], count)
        yield family
