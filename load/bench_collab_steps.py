"""The per-edit steps of the collaboration server, each alone: `python -m load.bench_collab_steps`.

One small edit's update (a few characters into a Text, as load.bench_collab's clients make) goes
through what the server does with it outside the event loop's own machinery: decode the
y-websocket message, check the update, build its event, validate the append, apply it to a
document; and the snapshot work per room: folding 1,000 updates, encoding a live document.
Prints microseconds per call (best of 5 rounds), to read beside the server CPU per edit that
load.bench_collab reports."""

from __future__ import annotations

import argparse
import random
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Map, Text

from crdt import EMPTY_UPDATE, document
from crdt.update import check_update
from domain import events
from eventstore import Limits
from eventstore.planning import AppendRequest
from jacameno.collab import protocol


def _edits(count: int) -> tuple[Doc[Any], list[bytes]]:
    doc: Doc[Any] = Doc()
    text = doc.get("lyrics", type=Text)
    bench = doc.get("bench", type=Map)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    rng = random.Random(1)
    for i in range(count):
        with doc.transaction():
            text.insert(rng.randint(0, min(32, len(text))), "ab")
            bench[f"0.{i % 10}:{i}"] = float(i)
    return doc, updates


def _per_call(step: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(step, number=number, repeat=5)) / number * 1e6


def _per_apply(updates: list[bytes], known: int) -> float:
    """Applying each of `updates[known:]`, new to a document holding `updates[:known]`."""
    best = float("inf")
    for _ in range(5):
        target: Doc[Any] = Doc()
        target.get("lyrics", type=Text)
        for earlier in updates[:known]:
            target.apply_update(earlier)
        started = time.perf_counter()
        for update in updates[known:]:
            document.apply(target, update, "bench")
        best = min(best, (time.perf_counter() - started) / (len(updates) - known) * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.bench_collab_steps", description=__doc__)
    parser.add_argument("--number", type=int, default=20_000, help="calls per round")
    args = parser.parse_args(argv)
    live, updates = _edits(5_000)
    update = updates[-1]
    frame = protocol.encode_update(update)
    summary = check_update(update)
    user, connection, node = "u" * 36, "c" * 32, "host:1"
    event = events.doc_updated(update, summary, user_id=user, connection_id=connection, node=node)
    steps: list[tuple[str, Callable[[], object], int]] = [
        ("decode the message", lambda: protocol.decode(frame), args.number),
        ("check_update", lambda: check_update(update), args.number),
        (
            "build the doc.updated event",
            lambda: events.doc_updated(
                update, summary, user_id=user, connection_id=connection, node=node
            ),
            args.number,
        ),
        (
            "AppendRequest.checked",
            lambda: AppendRequest.checked("project-x", [event], -1, Limits()),
            args.number,
        ),
        (
            "fold 1,000 updates (a snapshot)",
            lambda: document.fold(EMPTY_UPDATE, updates[:1000]),
            20,
        ),
        ("encode the live 5,000-edit document", lambda: live.get_update(), 200),
    ]
    for name, step, number in steps:
        print(f"{name:40s} {_per_call(step, number):10.2f} µs")
    print(f"{'apply a new edit to a 4,000-edit document':40s} {_per_apply(updates, 4000):10.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
