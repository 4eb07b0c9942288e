"""The baseline of `load.bench_assets` and `load.bench_catalog`: this machine's Python web stack
with nothing of JACAMENO in the way. `PUT /file` streams the body to a file; `PUT /sink` reads
the body and drops it (the most an upload through this stack can reach: receiving, nothing
else); `GET /file` serves it with Starlette's FileResponse (Range included);
`POST /api/tracks/{id}/plays` and `POST /api/plays` read the JSON body and answer 202 as plays
do, recording nothing (the ceiling any Python server of ours could reach for plays on this
machine and these clients). Run as
`python -m load.plain_server PORT FOLDER` under uvicorn, as the server under test runs;
`plain_server(folder)` starts it beside a benchmark."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from load.module_server import module_server


def app(folder: Path) -> Starlette:
    target = folder / "plain.bin"

    async def put(request: Request) -> Response:
        with target.open("wb") as file:
            async for chunk in request.stream():
                file.write(chunk)
        return Response(status_code=201)

    async def sink(request: Request) -> Response:
        async for _ in request.stream():
            pass
        return Response(status_code=201)

    async def get(request: Request) -> Response:
        return FileResponse(target, media_type="audio/wav")

    async def play(request: Request) -> Response:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            return Response(status_code=422)
        track_id = request.path_params["track_id"]
        return JSONResponse({"track_id": track_id, "position": 0}, status_code=202)

    async def plays(request: Request) -> Response:
        body = json.loads(await request.body())
        if not isinstance(body, dict) or not isinstance(body.get("plays"), list):
            return Response(status_code=422)
        answer = [{"track_id": p.get("track_id"), "position": 0} for p in body["plays"]]
        return JSONResponse({"plays": answer}, status_code=202)

    return Starlette(
        routes=[
            Route("/file", put, methods=["PUT"]),
            Route("/sink", sink, methods=["PUT"]),
            Route("/file", get),
            Route("/api/tracks/{track_id}/plays", play, methods=["POST"]),
            Route("/api/plays", plays, methods=["POST"]),
        ]
    )


@contextlib.asynccontextmanager
async def plain_server(folder: Path) -> AsyncIterator[str]:
    """The plain server started on a free port (its files under `folder`); its base URL."""
    async with module_server("load.plain_server", str(folder)) as (_, port):
        yield f"http://127.0.0.1:{port}"


def main() -> int:
    port, folder = int(sys.argv[1]), Path(sys.argv[2])
    uvicorn.run(app(folder), host="127.0.0.1", port=port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
