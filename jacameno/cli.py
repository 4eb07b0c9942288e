"""The `jacameno` command: serve, worker, migrate, projections, export, analyst, replay, history,
diff, blame, verify. Each reads the settings once and builds what it needs with the composition
root's builders (jacameno.bootstrap)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from jacameno import (
    analyst_cli,
    export_cli,
    history_cli,
    logs,
    projections_cli,
    verify_cli,
    worker_cli,
)
from jacameno.server import BindError
from jacameno.settings import Settings, SettingsError
from sqldb.migrate import MigrationError


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from jacameno import server
    from jacameno.app import create_app
    from jacameno.bootstrap.core import check_schema

    asyncio.run(check_schema(settings))
    port = settings.port if args.port is None else args.port
    sock = server.bind(args.host or settings.host, port)
    server.run(create_app(settings), settings, sock)
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r} (0 picks a free port)")
    return int(text)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from jacameno.bootstrap.core import migrate

    applied = asyncio.run(migrate(settings))
    target = settings.database_kind
    print(f"{target}: applied {', '.join(applied)}" if applied else f"{target}: up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jacameno", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP and WebSocket server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1 or JACAMENO_HOST)")
    serve.add_argument(
        "--port", type=_port, help="port (default 8000 or JACAMENO_PORT; 0 picks a free port)"
    )
    serve.set_defaults(run=_serve)
    migrate = commands.add_parser("migrate", help="apply pending schema migrations")
    migrate.add_argument("--database-url", help="overrides JACAMENO_DATABASE_URL")
    migrate.set_defaults(run=_migrate)
    projections_cli.add(commands)
    export_cli.add(commands)
    analyst_cli.add(commands)
    history_cli.add(commands)
    verify_cli.add(commands)
    worker_cli.add(commands)
    args = parser.parse_args(argv)
    try:
        environ = dict(os.environ)
        if getattr(args, "database_url", None):
            environ["JACAMENO_DATABASE_URL"] = args.database_url
        settings = Settings.from_env(environ)
        logs.configure(settings.log_level)
        code: int = args.run(settings, args)
    except (SettingsError, MigrationError, BindError) as exc:
        print(f"jacameno: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
