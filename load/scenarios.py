"""What the benchmark does to an event store, through its public Protocol only: sequential
batched appends, many concurrent single-event appenders (group commit), and a catch-up read."""

from __future__ import annotations

import asyncio
from time import perf_counter

from eventstore import ANY, EventStore, NewEvent
from load.stats import Measurement
from load.workload import Workload, new_stream


async def batched_appends(
    store: EventStore,
    workload: Workload,
    *,
    batch: int,
    events: int,
    max_seconds: float,
    warmup: int = 5,
) -> Measurement:
    """One writer appends `events` events to one stream, `batch` per append, each awaited before
    the next; stops early after `max_seconds`. Latency is per append."""
    stream = new_stream()
    appends = max(1, events // batch)
    for _ in range(warmup):
        await store.append(stream, workload.events(batch), ANY)
    batches = [workload.events(batch) for _ in range(appends)]
    latencies: list[float] = []
    start = perf_counter()
    deadline = start + max_seconds
    for events_ in batches:
        t0 = perf_counter()
        await store.append(stream, events_, ANY)
        t1 = perf_counter()
        latencies.append(t1 - t0)
        if t1 > deadline:
            break
    elapsed = perf_counter() - start
    return Measurement(len(latencies) * batch, elapsed, latencies)


async def concurrent_appenders(
    store: EventStore,
    workload: Workload,
    *,
    tasks: int,
    seconds: float,
    warmup: float,
) -> Measurement:
    """`tasks` tasks each append one event at a time, in a loop, to a stream of its own
    (expected version ANY) for `seconds`; the store's count of commits (`stats()`) gives the
    average number of events per transaction."""
    streams = [new_stream() for _ in range(tasks)]
    events = [workload.events(1) for _ in range(tasks)]
    measuring = False
    stop = False
    latencies: list[float] = []

    async def appender(stream: str, event: list[NewEvent]) -> None:
        while not stop:
            t0 = perf_counter()
            await store.append(stream, event, ANY)
            if measuring:
                latencies.append(perf_counter() - t0)

    running = [
        asyncio.create_task(appender(s, e), name=f"bench-appender-{i}")
        for i, (s, e) in enumerate(zip(streams, events, strict=True))
    ]
    try:
        await asyncio.sleep(warmup)
        measuring = True
        first_batch = store.stats().commits
        start = perf_counter()
        await asyncio.sleep(seconds)
        measuring = False
        elapsed = perf_counter() - start
        batches = store.stats().commits - first_batch
    finally:
        stop = True
        await asyncio.gather(*running)
    count = len(latencies)
    return Measurement(count, elapsed, latencies, {"avg_batch_events": count / max(1, batches)})


async def catch_up(store: EventStore, *, batch_size: int) -> Measurement:
    """A subscriber reads the whole log from position 0 with `next_batch()` until the head."""
    head = await store.head_position()
    subscription = store.subscribe(0, batch_size=batch_size)
    read = 0
    pages: list[float] = []
    start = perf_counter()
    while subscription.position < head:
        t0 = perf_counter()
        read += len(await subscription.next_batch())
        pages.append(perf_counter() - t0)
    elapsed = perf_counter() - start
    subscription.close()
    return Measurement(read, elapsed, pages)
