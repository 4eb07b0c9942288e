"""Group-commit pacing: above the arrival rate it names, commits start at least `interval`
apart and carry more appends; below it, and without pacing, an append is committed at once."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from eventstore import Limits, NewEvent, StoreClosedError
from eventstore.groupcommit import GroupCommitter, Pacing
from eventstore.model import AppendResult
from eventstore.planning import AppendRequest, BatchAnswer


class Recorder:
    """A commit function that takes `seconds` per batch and records when each started."""

    def __init__(self, seconds: float = 0.0005) -> None:
        self.seconds = seconds
        self.starts: list[float] = []
        self.sizes: list[int] = []
        self.position = 0

    async def __call__(self, requests: list[AppendRequest]) -> list[BatchAnswer]:
        self.starts.append(asyncio.get_running_loop().time())
        self.sizes.append(len(requests))
        await asyncio.sleep(self.seconds)
        answers: list[BatchAnswer] = []
        for request in requests:
            self.position += 1
            answers.append(AppendResult(request.stream, 1, 1, self.position, self.position))
        return answers


def _request(i: int) -> AppendRequest:
    return AppendRequest.checked(f"s-{i}", [NewEvent("t", b"x")], -1, Limits())


async def _open_loop(committer: GroupCommitter, rate: float, seconds: float) -> list[float]:
    """Independent writers: one append every 1/rate seconds, none waiting for the last; the
    latency of each."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []

    async def one(i: int) -> None:
        started = loop.time()
        await committer.submit(_request(i))
        latencies.append(loop.time() - started)

    tasks = []
    for i in range(int(rate * seconds)):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    return latencies


def p95(latencies: list[float]) -> float:
    """The 95th percentile: the bound holds for almost every append, and one pause of a busy
    machine (another process on the same two cores) does not decide the test."""
    return sorted(latencies)[int(len(latencies) * 0.95)]


async def test_fast_arrivals_are_paced_into_fewer_larger_commits() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder, pacing=Pacing(interval=0.02, above=100, window=0.05))
    latencies = await _open_loop(committer, rate=500, seconds=0.6)
    await committer.close()
    assert committer.paced > 0
    # Once a window has measured the rate, commits start `interval` apart.
    known = [t for t in recorder.starts if t >= recorder.starts[0] + 0.1]
    assert min(b - a for a, b in itertools.pairwise(known)) >= 0.019
    assert sum(recorder.sizes) == len(latencies) == 300
    assert len(recorder.sizes) < 80  # about 25 fast then 25 paced commits, not 300
    assert p95(latencies) < 0.02 + 0.05  # at most the pace (and scheduling) added


async def test_slow_arrivals_are_not_paced() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder, pacing=Pacing(interval=0.02, above=1000, window=0.05))
    latencies = await _open_loop(committer, rate=100, seconds=0.3)
    await committer.close()
    assert committer.paced == 0
    assert len(recorder.sizes) == len(latencies) == 30
    assert p95(latencies) < 0.015


async def test_without_pacing_a_lone_append_commits_at_once() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder)
    latencies = await _open_loop(committer, rate=500, seconds=0.2)
    await committer.close()
    assert committer.paced == 0
    assert p95(latencies) < 0.015


async def test_closing_over_a_database_that_never_answers_is_bounded() -> None:
    hung = asyncio.Event()

    async def never(requests: list[AppendRequest]) -> list[BatchAnswer]:
        hung.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    committer = GroupCommitter(never)
    under_way = asyncio.create_task(committer.submit(_request(1)))
    await hung.wait()
    queued = asyncio.create_task(committer.submit(_request(2)))
    await asyncio.sleep(0)
    await asyncio.wait_for(committer.close(timeout=0.1), 2)
    with pytest.raises(StoreClosedError, match="outcome"):
        await under_way
    with pytest.raises(StoreClosedError):
        await queued
    with pytest.raises(StoreClosedError):
        await committer.submit(_request(3))
