"""Postgres faults on one of two real `jacameno serve` nodes (one Postgres, one Redis), measured:

- node A stalls while its clients and node B's clients edit one project (so A's writer collides
  with B's and takes its contended path), at the worst moment the test can find: the moment A's
  writer waits for A inside a transaction, if that ever happens, else after a second of
  contention. A is stopped with SIGSTOP, or its link to Postgres (a proxy of the test's own)
  goes silent. B's clients keep being acknowledged (never 2 s without an ack), and afterwards
  every acknowledged edit is in the log and every client converges to it;
- node A's link goes silent for good: its clients (Python, and the real y-websocket provider)
  are closed with 1013 within JACAMENO_COLLAB_APPEND_TIMEOUT, they carry on through node B, and
  A serves again once its link is back.

Times are printed (`pytest -s`); docs/operations.md, "Postgres faults", quotes them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pycrdt import Text
from websockets.exceptions import InvalidHandshake

from harness.accounts import User
from harness.server import ServerProcess
from harness.waiting import eventually
from tests.e2e import documents
from tests.e2e.clients import converged, python_client, python_settled
from tests.e2e.conftest import JSClients
from tests.faultproxy import FaultProxy, proxied
from tests.integration.collab.support import YClient

pytestmark = pytest.mark.slow

STALL = 3.0  # seconds node A stays stalled
BOUND = 2.0  # seconds node B's clients may go without an acknowledgement, at most
APPEND_TIMEOUT = 2.0  # JACAMENO_COLLAB_APPEND_TIMEOUT of the silent-link test
PAUSE = 0.02  # seconds between a typist's acknowledgement and its next edit


class Typist:
    """A client that keeps editing at a typist's pace: an edit, wait for its echo (its
    acknowledgement), a pause, again."""

    def __init__(self, client: YClient, tag: str, pause: float = PAUSE) -> None:
        self.client = client
        self.tag = tag
        self.pause = pause
        self.acks: list[float] = []
        self._seen = 0  # echoes looked at
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        client, i = self.client, 0
        while client.close_code is None:
            i += 1
            client.doc.get("lyrics", type=Text).insert(0, f"{self.tag}{i} ")
            if await self._echoed(client.sent[-1]):
                self.acks.append(time.monotonic())
                await asyncio.sleep(self.pause)

    async def _echoed(self, update: bytes) -> bool:
        client = self.client
        while client.close_code is None:
            echoes, self._seen = client.echoes[self._seen :], len(client.echoes)
            if update in echoes:
                return True
            await asyncio.sleep(0.002)
        return False

    def longest_wait(self, start: float, end: float) -> float:
        """The longest time between `start` and `end` without an acknowledgement."""
        times = [start, *(t for t in self.acks if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(times))

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def two_nodes(
    pg_url: str, redis_url: str, tmp_path: Path, append_timeout: float | None = None
) -> AsyncIterator[tuple[ServerProcess, ServerProcess, FaultProxy]]:
    """Node A reaches Postgres through a FaultProxy, node B directly."""
    secret = "e2e-" + uuid.uuid4().hex
    env = {"JACAMENO_REDIS_URL": redis_url}
    if append_timeout is not None:
        env["JACAMENO_COLLAB_APPEND_TIMEOUT"] = str(append_timeout)
    async with proxied(pg_url, watch=b"jacameno-eventstore-writer") as proxy:
        a = ServerProcess(proxy.url(pg_url), tmp_path / "a", secret, tmp_path / "a.log", env)
        b = ServerProcess(pg_url, tmp_path / "b", secret, tmp_path / "b.log", env)
        try:
            await asyncio.gather(a.start(), b.start())
            yield a, b, proxy
        finally:
            proxy.resume()
            for node in (a, b):
                if node.process is not None and node.process.returncode is None:
                    node.process.send_signal(signal.SIGCONT)
            await asyncio.gather(a.stop(), b.stop())
            for name, node in (("a", a), ("b", b)):
                print(f"--- node {name} log ---\n{node.log_tail()}")


async def _project(node: ServerProcess) -> tuple[User, User, str]:
    alice, bob = await asyncio.gather(node.user("alice"), node.user("bob"))
    return alice, bob, await node.project(alice, (bob, "editor"))


async def _converged(pg_url: str, project: str, clients: list[YClient]) -> None:
    """Every update each client sent is in the log, and every client shows the logged document."""
    logged = await documents.logged_updates(pg_url, project)
    data = {e["data"] for e in logged}
    for client in clients:
        assert set(client.sent) <= data, "an update was lost"
    expected = documents.from_doc(documents.build(e["data"] for e in logged))
    await eventually(lambda: all(documents.from_doc(c.doc) == expected for c in clients), 10)


async def _until(
    check: Callable[[], bool], timeout: float, what: str, typists: list[Typist]
) -> None:
    try:
        await eventually(check, timeout)
    except AssertionError:
        state = [(t.tag, len(t.acks), t.client.close_code, t.client.close_reason) for t in typists]
        raise AssertionError(f"not in {timeout} s: {what}; (tag, acks, close) {state}") from None


async def _joined(node: ServerProcess, project: str, token: str, timeout: float) -> YClient:
    """A synced client of `node`, retrying as a provider does while the node refuses."""
    deadline = time.monotonic() + timeout
    while True:
        client = YClient(node, project, token)  # type: ignore[arg-type]
        with contextlib.suppress(OSError, InvalidHandshake, TimeoutError):
            await client.connect()
            await client.sync()
            if client.synced and client.close_code is None:
                return client
        assert time.monotonic() < deadline, f"node A refuses: {client.close_code}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("fault", ["sigstop", "silent-link"])
async def test_a_node_stalled_inside_its_commit_holds_up_no_other_node(
    fault: str, fresh_pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    # Node A's own rooms outlast the stall (a silent log failing them is the next test's).
    nodes = two_nodes(fresh_pg_url, redis_url, tmp_path, append_timeout=STALL * 10)
    async with nodes as (a, b, proxy):
        alice, bob, project = await _project(b)
        here = await python_client(a, project, alice.token)
        there = await python_client(b, project, bob.token)
        stalled = asyncio.Event()

        def stall() -> None:
            if stalled.is_set():
                return
            stalled.set()
            if fault == "sigstop":
                assert a.process is not None
                os.kill(a.process.pid, signal.SIGSTOP)
            else:
                proxy.silence()

        proxy.on_wait_in_transaction = stall
        typists = [Typist(here, "a"), Typist(there, "b")]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stalled.wait(), 1.0)
        stall()
        start = time.monotonic()
        await asyncio.sleep(STALL)
        end = time.monotonic()
        proxy.resume()
        assert a.process is not None
        a.process.send_signal(signal.SIGCONT)
        held = typists[1].longest_wait(start, end)
        print(
            f"{fault}: node A stalled {end - start:.1f} s"
            f" ({proxy.waits_in_transaction} waits inside a transaction seen);"
            f" longest wait for an ack on node B: {held:.3f} s"
        )
        assert held < BOUND, f"node B's clients waited {held:.2f} s for an acknowledgement"
        count = len(typists[0].acks)
        await eventually(lambda: len(typists[0].acks) > count, 15)  # node A edits again
        print(f"{fault}: node A's first ack {typists[0].acks[count] - end:.3f} s after the stall")
        for typist in typists:
            await typist.stop()
        await asyncio.gather(python_settled(here), python_settled(there))
        await _converged(fresh_pg_url, project, [here, there])
        await here.close()
        await there.close()


async def test_a_node_whose_log_goes_silent_closes_its_sockets_and_clients_move_on(
    fresh_pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with two_nodes(fresh_pg_url, redis_url, tmp_path, APPEND_TIMEOUT) as (a, b, proxy):
        alice, bob, project = await _project(b)
        here = await python_client(a, project, alice.token)
        there = await python_client(b, project, bob.token)
        typists = [Typist(here, "a"), Typist(there, "b")]
        await _until(
            lambda: len(typists[0].acks) > 3 and len(typists[1].acks) > 3, 10, "both edit", typists
        )
        proxy.silence()
        start = time.monotonic()
        await _until(lambda: here.close_code is not None, APPEND_TIMEOUT + 10, "closed", typists)
        closed = time.monotonic() - start
        assert here.close_code == 1013, (here.close_code, here.close_reason)
        assert closed < APPEND_TIMEOUT + 1.0, f"closed after {closed:.2f} s"

        # The client moves to node B with what it has, unacknowledged edits included (its sync
        # step 2 carries them), and edits on.
        moved = YClient(b, project, alice.token)  # type: ignore[arg-type]
        moved.doc.apply_update(here.doc.get_update())
        await moved.connect()
        await moved.sync()
        mover = Typist(moved, "m")
        await _until(lambda: len(mover.acks) > 0, 10, "the moved client is acknowledged", [mover])
        flowing = mover.acks[0] - start
        held = typists[1].longest_wait(start, time.monotonic())
        print(
            f"silent link: sockets on node A closed with 1013 after {closed:.3f} s"
            f" (append timeout {APPEND_TIMEOUT} s); the moved client's first ack on node B"
            f" {flowing:.3f} s after the link went silent; longest wait for an ack on node B:"
            f" {held:.3f} s"
        )
        assert held < BOUND, f"node B's clients waited {held:.2f} s for an acknowledgement"

        # A newcomer on node A, while its link is still silent, is told to try again within the
        # same bound instead of waiting on the database (admission and loading are bounded too).
        asked = time.monotonic()
        newcomer = YClient(a, project, bob.token)  # type: ignore[arg-type]
        await newcomer.connect()
        await _until(lambda: newcomer.close_code is not None, APPEND_TIMEOUT + 10, "refused", [])
        refused = time.monotonic() - asked
        print(f"silent link: a newcomer on node A got {newcomer.close_code} after {refused:.3f} s")
        assert newcomer.close_code == 1013, (newcomer.close_code, newcomer.close_reason)
        assert refused < APPEND_TIMEOUT + 1.0, f"refused after {refused:.2f} s"

        for typist in (mover, typists[1]):
            await typist.stop()
        await asyncio.gather(python_settled(moved), python_settled(there))
        logged = [e["data"] for e in await documents.logged_updates(fresh_pg_url, project)]
        lyrics = documents.from_doc(documents.build(logged))["lyrics"]
        missing = [i for i in range(1, len(here.sent) + 1) if f"a{i} " not in lyrics]
        assert not missing, f"edits of the client that moved are not in the log: {missing}"

        # Node A serves again once its link is back (a provider retries until it does: the first
        # join may meet a pooled connection that the server ended while the link was silent).
        proxy.resume()
        healed = time.monotonic()
        back = await _joined(a, project, bob.token, 30)
        again = Typist(back, "r")
        await _until(lambda: len(again.acks) > 0, 30, "node A acknowledges again", [again])
        print(f"silent link: node A acknowledged again {again.acks[0] - healed:.3f} s after")
        await again.stop()
        await asyncio.gather(python_settled(back), python_settled(moved), python_settled(there))
        await _converged(fresh_pg_url, project, [back, moved, there])
        for client in (back, moved, there):
            await client.close()


async def test_a_real_provider_leaves_a_node_whose_log_goes_silent_for_a_healthy_one(
    fresh_pg_url: str, redis_url: str, tmp_path: Path, js_client: JSClients
) -> None:
    async with two_nodes(fresh_pg_url, redis_url, tmp_path, APPEND_TIMEOUT) as (a, b, proxy):
        alice, bob, project = await _project(b)
        provider = await js_client("alice")
        await provider.connect(a.ws_url, project, alice.token)
        await provider.wait_synced()
        there = await python_client(b, project, bob.token)
        await provider.start_typing("la " * 400, interval_ms=10)
        await provider.wait_acked(3)
        proxy.silence()
        start = time.monotonic()
        closed = await provider.wait_event(
            lambda e: e.get("event") == "closed" and e.get("code") == 1013, APPEND_TIMEOUT + 5
        )
        closed_after = time.monotonic() - start
        # Its load balancer sends it to the other node; it goes on typing all along.
        await provider.disconnect()
        await provider.connect(b.ws_url, project, alice.token)
        await provider.wait_synced()
        acked = len((await provider.state()).acked)
        await provider.wait_acked(acked + 3)
        flowing = time.monotonic() - start
        typed = await provider.stop_typing()
        await provider.wait_settled()
        print(
            f"silent link, y-websocket provider: {closed} after {closed_after:.3f} s;"
            f" acknowledged by node B {flowing:.3f} s after the link went silent"
        )
        assert closed_after < APPEND_TIMEOUT + 1.0, f"closed after {closed_after:.2f} s"
        final = await converged([provider], [there])
        assert len(final["lyrics"]) == typed
        logged = await documents.from_log(fresh_pg_url, project)
        assert documents.from_doc(logged) == final
        proxy.resume()
        await there.close()
