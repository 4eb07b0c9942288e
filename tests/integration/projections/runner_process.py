"""A projection runner in a process of its own, for the tests that SIGKILL it mid-batch:
`python -m tests.integration.projections.runner_process DATABASE_URL`. It folds slowly (a pause
per event inside the batch's transaction) so that a kill lands mid-batch, and prints its state
whenever it changes."""

from __future__ import annotations

import asyncio
import sys

from eventstore import RecordedEvent
from harness.databases import open_store
from projections.failures import Apply
from projections.runner import Projection, ProjectionRunner
from projections.tables import Names
from sqldb import Connection, open_database
from sqldb.locks import open_locks
from tests.integration.projections.support import COUNTER, counting


def slow_counting(names: Names) -> Apply:
    count = counting(names)

    async def apply(conn: Connection, events: list[RecordedEvent]) -> None:
        for event in events:
            await count(conn, [event])
            await asyncio.sleep(0.002)

    return apply


SLOW_COUNTER = Projection(COUNTER.name, COUNTER.event_types, slow_counting, tables=COUNTER.tables)


async def main(url: str) -> None:
    store = await open_store(url)
    db = await open_database(url)
    runner = ProjectionRunner(store, db, [SLOW_COUNTER], batch_size=50, locks=open_locks(url))
    await runner.start()
    said = ""
    while True:
        state = (await runner.status())[0].state
        if state != said:
            print(state, flush=True)
            said = state
        await asyncio.sleep(0.02)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
