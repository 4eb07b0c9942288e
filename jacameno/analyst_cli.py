"""`jacameno analyst grant|revoke ROLE`: give a Postgres role read-only access to exactly the read
models (projections/analysts.py), or take it back."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from jacameno.settings import Settings


def add(commands: Any) -> None:
    """Add `analyst grant ROLE` and `analyst revoke ROLE` to the `jacameno` command."""
    parser = commands.add_parser("analyst", help="read-only access to the read models (Postgres)")
    parser.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    actions = parser.add_subparsers(dest="action", required=True)
    for action, text in (
        ("grant", "let a database role read the read models, and nothing else"),
        ("revoke", "take that access back"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("role", help="an existing Postgres role")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(settings, args.action, args.role))


async def _run(settings: Settings, action: str, role: str) -> int:
    from jacameno.bootstrap.core import database
    from projections import analysts

    async with database(settings) as db:
        try:
            await (analysts.grant if action == "grant" else analysts.revoke)(db, role)
        except (analysts.NoSuchRole, analysts.NoRoles) as exc:
            print(f"jacameno: {exc}", file=sys.stderr)
            return 2
    done = "may now read" if action == "grant" else "may no longer read"
    print(f"{role} {done} the read models")
    return 0
