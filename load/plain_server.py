"""The baseline of `load.bench_assets`: a plain file served by this machine, with nothing of
JACAMENO in the way. `PUT /file` streams the body to a file; `GET /file` serves it with
Starlette's FileResponse (Range included). Run as `python -m load.plain_server PORT FOLDER`
under uvicorn, as the server under test runs."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route


def app(folder: Path) -> Starlette:
    target = folder / "plain.bin"

    async def put(request: Request) -> Response:
        with target.open("wb") as file:
            async for chunk in request.stream():
                file.write(chunk)
        return Response(status_code=201)

    async def get(request: Request) -> Response:
        return FileResponse(target, media_type="audio/wav")

    return Starlette(routes=[Route("/file", put, methods=["PUT"]), Route("/file", get)])


def main() -> int:
    port, folder = int(sys.argv[1]), Path(sys.argv[2])
    uvicorn.run(app(folder), host="127.0.0.1", port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
