"""Micro-benchmarks of the CRDT layer's work per update: `python -m load.bench_crdt`.

What a room does with each update it receives, step by step: `check_update`, the nesting check
and record (`Nesting.check` then `Nesting.record_resolved`), and `document.apply`; on realistic
updates: a keystroke in a Y.Text, a value set in a track's Y.Map (nested in the `tracks` array),
an edit as load.bench_collab's clients make it (a few characters near the start of a Text shared
by several writers, and a key set in a root Map), and a whole document as a sync step 2 carries
it. Prints microseconds per update, the minimum and the median over rounds.

`--baseline REV` runs the same calls against the CRDT code of an older commit too (its `crdt/`,
or before that package existed `jacameno/collab/`, extracted with `git archive` and imported
under other module names), interleaved round by round in the same process so that whatever
else the machine does hits both alike; the ratio (ours / baseline, of the minimums) is the
figure to read, the absolute microseconds are only as quiet as the machine. A step that the
baseline lacks (nesting before it existed) prints as "-"."""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pycrdt import Array, Doc, Map, Text

MAX_TYPE_DEPTH = 16  # the room's default limit, roughly: no benchmarked update comes near it
_CLIENT_IDS = 2_904_416_737  # Yjs draws client ids from 32 bits: most take 5 bytes encoded
_PACKAGES = ("crdt", "jacameno")  # what a baseline's CRDT code may import, extracted whole


@dataclass(frozen=True, slots=True)
class Impl:
    """One version of the CRDT code: the three calls a room makes per update."""

    name: str
    check_update: Callable[[bytes], Any]
    apply: Callable[[Doc[Any], bytes, str], None]
    nesting: Callable[[bytes], Any] | None  # a whole document's state -> its Nesting


@dataclass(frozen=True, slots=True)
class Case:
    """Updates a room receives one after another, on a document whose state is `base`."""

    name: str
    base: bytes
    updates: list[bytes]
    repeat: int  # passes over `updates` per round, so that a round lasts long enough to time


def _impl(name: str, modules: dict[str, ModuleType]) -> Impl:
    def find(*names: str) -> ModuleType | None:
        return next((modules[n] for n in names if n in modules), None)

    update = find("crdt.update", "jacameno.collab.update")
    document = find("crdt.document", "jacameno.collab.document")
    if update is None or document is None:
        raise SystemExit(f"{name}: no update or document module")
    nesting = find("crdt.nesting", "jacameno.collab.nesting")
    return Impl(
        name,
        update.check_update,
        document.apply,
        None if nesting is None else nesting.Nesting.of,
    )


_WANTED = (
    "crdt.update",
    "crdt.document",
    "crdt.nesting",
    "jacameno.collab.update",
    "jacameno.collab.document",
    "jacameno.collab.nesting",
)


def _import_present(names: tuple[str, ...]) -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for name in names:
        try:
            found[name] = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # a module that is there failed to import: not a layout question
    return found


def ours() -> Impl:
    return _impl("ours", _import_present(("crdt.update", "crdt.document", "crdt.nesting")))


@contextmanager
def _isolated_imports(folder: Path) -> Iterator[None]:
    """Import `_PACKAGES` from `folder` inside the block, then give ours back their names (the
    modules imported inside stay alive through the functions that refer to them)."""

    def ours_loaded() -> dict[str, ModuleType]:
        return {
            name: module for name, module in sys.modules.items() if name.split(".")[0] in _PACKAGES
        }

    saved = ours_loaded()
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in ours_loaded():
            del sys.modules[name]
        sys.modules.update(saved)


def baseline(revision: str, folder: Path) -> Impl:
    """The CRDT code of `revision` (anything `git archive` takes), extracted into `folder`."""
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", revision, *_PACKAGES],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    archive = subprocess.run(["git", "archive", revision, *listed], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    present = {path.split("/")[0] for path in listed}
    with _isolated_imports(folder):
        modules = _import_present(tuple(n for n in _WANTED if n.split(".")[0] in present))
    for module in modules.values():
        if not Path(module.__file__ or "").is_relative_to(folder):
            raise SystemExit(f"{module.__name__} of {revision} was not imported from {folder}")
    return _impl(revision, modules)


# -- the updates -------------------------------------------------------------------------------


def _capture(doc: Doc[Any]) -> list[bytes]:
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return updates


def _project(writers: int, chars: int) -> list[Doc[Any]]:
    """`writers` documents in sync on a project: 12 tracks (maps with a clips array of maps) and
    lyrics that they typed a character at a time, each in their own place, with some deleted."""
    docs: list[Doc[Any]] = [Doc(client_id=_CLIENT_IDS + n) for n in range(writers)]
    first = docs[0]
    tracks: Array[Any] = first.get("tracks", type=Array)
    with first.transaction():
        first.get("meta", type=Map)["title"] = "Demo"
        for n in range(12):
            clips = Array([Map({"start": float(4 * c), "length": 4.0}) for c in range(4)])
            tracks.append(Map({"id": f"t{n}", "name": f"Track {n}", "volume": 0.8, "clips": clips}))
    first.get("lyrics", type=Text).insert(0, "\n" * writers)
    for doc in docs[1:]:
        doc.apply_update(first.get_update())
    for n in range(chars):
        for index, doc in enumerate(docs):
            lyrics = doc.get("lyrics", type=Text)
            lyrics.insert(_line_end(str(lyrics), index), "la "[n % 3])
        if n % 50 == 49:
            del docs[0].get("lyrics", type=Text)[0:2]
        _sync(docs)
    return docs


def _line_end(text: str, line: int) -> int:
    at = -1
    for _ in range(line + 1):
        at = text.index("\n", at + 1)
    return at


def _sync(docs: list[Doc[Any]]) -> None:
    for doc in docs[1:]:
        docs[0].apply_update(doc.get_update(docs[0].get_state()))
    for doc in docs[1:]:
        doc.apply_update(docs[0].get_update(doc.get_state()))


def cases(edits: int) -> list[Case]:
    docs = _project(writers=3, chars=1500)
    writer = docs[1]
    base = writer.get_update()

    typed = _capture(writer)
    lyrics = writer.get("lyrics", type=Text)
    at = _line_end(str(lyrics), 1)
    for n in range(edits):
        lyrics.insert(at + n, "abc "[n % 4])  # each beside the one typed before
    keystrokes = list(typed)

    typed.clear()
    tracks: Array[Any] = writer.get("tracks", type=Array)
    for n in range(edits):
        track = tracks[n % len(tracks)]
        if n % 2:
            track["volume"] = n / edits
        else:
            track["clips"][n % 4]["start"] = float(n)  # a clip's map, one level deeper
    settings = list(typed)

    typed.clear()
    bench: Map[Any] = writer.get("bench", type=Map)
    for n in range(edits):
        with writer.transaction():
            lyrics.insert(n % 32, "ab")  # near the start: beside others' characters
            bench[f"0.1:{n}"] = float(n)
    load_edits = list(typed)
    state = writer.get_update()  # the whole session: what a sync step 2 to a new client holds

    return [
        Case("keystroke in a Y.Text", base, keystrokes, 20),
        Case("set in a track's nested Y.Map", base, settings, 20),
        Case("load.bench_collab edit", base, load_edits, 20),
        Case(f"sync step 2 ({len(state) // 1024} KiB)", b"\x00\x00", [state], 10),
    ]


# -- timing ------------------------------------------------------------------------------------


def _time_check(impl: Impl, case: Case) -> float:
    check = impl.check_update
    started = time.perf_counter()
    for _ in range(case.repeat):
        for update in case.updates:
            check(update)
    return time.perf_counter() - started


def _time_nesting(impl: Impl, case: Case) -> float:
    assert impl.nesting is not None
    nestings = [impl.nesting(case.base) for _ in range(case.repeat)]
    summaries = [impl.check_update(update) for update in case.updates]
    # The nesting checks an update's whole summary since it checks items between two types
    # and cut characters; before, its runs and such of the summary's fields as it named.
    named = inspect.signature(type(nestings[0]).check).parameters
    if "summary" in named:
        checks = [(s, MAX_TYPE_DEPTH) for s in summaries]
    else:
        fields = [f for f in ("between", "halves", "deleted") if f in named]
        checks = [(s.runs, MAX_TYPE_DEPTH, *(getattr(s, f) for f in fields)) for s in summaries]
    started = time.perf_counter()
    for nesting in nestings:
        for args in checks:
            nesting.record_resolved(nesting.check(*args))
    return time.perf_counter() - started


def _time_apply(impl: Impl, case: Case) -> float:
    docs: list[Doc[Any]] = []
    for _ in range(case.repeat):
        doc: Doc[Any] = Doc()
        doc.apply_update(case.base)
        docs.append(doc)
    apply = impl.apply
    started = time.perf_counter()
    for doc in docs:
        for update in case.updates:
            apply(doc, update, "bench")
    return time.perf_counter() - started


STEPS: dict[str, Callable[[Impl, Case], float]] = {
    "check_update": _time_check,
    "nesting check+record": _time_nesting,
    "apply": _time_apply,
}


@dataclass(slots=True)
class Samples:
    """µs per update, one figure per round, for each (case, step, implementation)."""

    figures: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)

    def add(self, case: Case, step: str, impl: Impl, seconds: float) -> None:
        per_update = seconds / (case.repeat * len(case.updates)) * 1e6
        self.figures.setdefault((case.name, step, impl.name), []).append(per_update)

    def get(self, case: str, step: str, impl: str) -> list[float]:
        return self.figures.get((case, step, impl), [])


def measure(impls: list[Impl], all_cases: list[Case], rounds: int) -> Samples:
    """Every step of every case, for each implementation in turn, `rounds` times; the order of
    the implementations alternates from one round to the next."""
    samples = Samples()
    for round_ in range(rounds):
        order = impls if round_ % 2 == 0 else impls[::-1]
        for case in all_cases:
            for step, timer in STEPS.items():
                for impl in order:
                    if step.startswith("nesting") and impl.nesting is None:
                        continue
                    samples.add(case, step, impl, timer(impl, case))
    return samples


def report(samples: Samples, impls: list[Impl], all_cases: list[Case]) -> list[str]:
    ours_impl, base = impls[0], impls[1] if len(impls) > 1 else None
    head = f"{'case':34s} {'step':21s} {'ours min':>9s} {'median':>8s}"
    if base is not None:
        head += f" {'base min':>9s} {'median':>8s} {'ratio':>6s}"
    lines = [head + "   (µs per update)"]
    for case in all_cases:
        steps = [*STEPS, "total"]
        for step in steps:
            line = f"{case.name:34s} {step:21s} " + _cells(samples, case.name, step, ours_impl.name)
            if base is not None:
                ours_min = _total_min(samples, case.name, step, ours_impl.name)
                base_min = _total_min(samples, case.name, step, base.name)
                line += " " + _cells(samples, case.name, step, base.name)
                ratio = ours_min / base_min if ours_min and base_min else None
                line += f" {ratio:6.3f}" if ratio is not None else f" {'-':>6s}"
            lines.append(line)
    return lines


def _summary(samples: Samples, case: str, step: str, impl: str) -> tuple[float, float] | None:
    """Minimum and median over the rounds; for "total", the sums of the steps' minimums and
    medians (a busy moment in one step does not spoil the total)."""
    steps = list(STEPS) if step == "total" else [step]
    columns = [f for f in (samples.get(case, s, impl) for s in steps) if f]
    if not columns:
        return None
    return sum(min(f) for f in columns), sum(statistics.median(f) for f in columns)


def _total_min(samples: Samples, case: str, step: str, impl: str) -> float | None:
    summary = _summary(samples, case, step, impl)
    return None if summary is None else summary[0]


def _cells(samples: Samples, case: str, step: str, impl: str) -> str:
    summary = _summary(samples, case, step, impl)
    if summary is None:
        return f"{'-':>9s} {'-':>8s}"
    return f"{summary[0]:9.2f} {summary[1]:8.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.bench_crdt", description=__doc__)
    parser.add_argument("--baseline", metavar="REV", help="commit to compare with, e.g. main")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    parser.add_argument("--edits", type=int, default=200, help="updates per case (default 200)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-crdt-") as folder:
        impls = [ours()]
        if args.baseline:
            impls.append(baseline(args.baseline, Path(folder)))
        all_cases = cases(args.edits)
        for line in report(measure(impls, all_cases, args.rounds), impls, all_cases):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
