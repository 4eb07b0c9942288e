"""A child process that runs the worker's CPU-heavy tasks one at a time, off the event loop, and
that can be stopped mid-task: a cancelled job or one past its time limit kills the process, and
the next task starts a new one. The child imports the numeric stack once and keeps it warm;
`start` has it do so before any task is sent.

Messages from the child (over a pipe): ("ready",) once it has imported the tasks' module; for
each task, ("progress", fraction) while it works, then ("done", answer) or ("error", kind,
message). A child that dies (killed, out of memory) ends the task with `SlotDied`."""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import logging
import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SlotDied(Exception):
    """The child process ended before it answered."""


class TaskFailed(Exception):
    """The task raised in the child: `kind` is its exception's class name."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(f"{kind}: {message}")


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a SIGKILLed worker must not leave
    its task running); elsewhere the child ends when it next reads the closed pipe."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _serve(conn: Connection, target: str) -> None:
    """The child: import `module:function` once, then run each task it is sent."""
    _die_with_parent()
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        try:
            answer = function(task, lambda fraction: conn.send(("progress", float(fraction))))
        except Exception as exc:  # the parent decides what a failure means
            conn.send(("error", type(exc).__name__, str(exc)))
        else:
            conn.send(("done", answer))


class Slot:
    def __init__(self, target: str) -> None:
        """`target`: "module:function", called in the child as function(task, progress)."""
        self._target = target
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    async def start(self) -> None:
        """Start the child unless it runs, and return once it has imported the tasks' module,
        so that a task sent next starts at once. SlotDied if the child ends first."""
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return
        self.kill()
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child, self._target), name="jacameno-ai-task", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        try:
            message = await self._receive(parent)
        except BaseException:
            self.kill()
            raise
        if message != ("ready",):
            self.kill()
            raise SlotDied(f"the task's process said {message!r} before it was ready")

    async def run(self, task: Any, progress: Progress) -> Any:
        """Run `task` in the child and return its answer. TaskFailed if it raised, SlotDied if
        the child ended; cancelling the call kills the child."""
        await self.start()
        conn = self._conn
        assert conn is not None
        conn.send(task)
        try:
            while True:
                message = await self._receive(conn)
                if message[0] == "progress":
                    progress(message[1])
                elif message[0] == "done":
                    return message[1]
                else:
                    raise TaskFailed(message[1], message[2])
        except TaskFailed:
            raise
        except BaseException:  # cancelled, or the child died: no task may be left running
            self.kill()
            raise

    async def _receive(self, conn: Connection) -> Any:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(conn.fileno(), readable.set)
        try:
            while not conn.poll():
                await readable.wait()
                readable.clear()
            return conn.recv()
        except (EOFError, OSError) as exc:
            raise SlotDied("the task's process ended") from exc
        finally:
            loop.remove_reader(conn.fileno())

    def kill(self) -> None:
        """Stop the child now (SIGKILL); the next task starts another."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None and process.is_alive():
            process.kill()
        if process is not None:
            process.join(5)
