"""A served node pays pycrdt's first-use cost before its first room (crdt.document.warm_up):
the first document made on a running event loop imports anyio's asyncio backend, 5 ms that a
restart's burst of reconnecting sockets would otherwise wait for."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import asyncio, sys
from pycrdt import Doc
from crdt import document

async def main():
    if sys.argv[1] == "warm":
        document.warm_up()
    before = set(sys.modules)
    Doc()
    print(" ".join(sorted(set(sys.modules) - before)))

asyncio.run(main())
"""


def _imported_by_a_document(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_a_first_document_on_the_loop_imports_modules() -> None:
    assert _imported_by_a_document("cold") != ""  # what warm_up is for


def test_after_the_warm_up_a_document_on_the_loop_imports_nothing() -> None:
    assert _imported_by_a_document("warm") == ""
