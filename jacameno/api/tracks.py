"""`/api/projects/{id}/tracks`: the project's tracks and their clips as the `document` read model
(projections/document.py) holds them, for members only. It answers from the read model, so it
trails the live document by the projection's lag; `version` says which stream version it shows."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse, Response

from jacameno.api.projects import member_role
from jacameno.http import schemas
from jacameno.http.endpoint import Call, Operation
from projections.document import DocumentReadModel
from projections.projects import ProjectsReadModel


@dataclass(frozen=True, slots=True)
class TrackServices:
    """What the tracks route needs: the members' roles and the document read model."""

    projects: ProjectsReadModel
    document: DocumentReadModel


TrackCall = Call[TrackServices]


async def list_tracks(call: TrackCall) -> Response:
    project_id, _ = await member_role(call.services.projects, call)
    return JSONResponse(await call.services.document.tracks(project_id))


OPERATIONS: list[Operation[TrackServices]] = [
    Operation(
        "GET",
        "/api/projects/{project_id}/tracks",
        "list_tracks",
        "The project's tracks in document order, each with its clips, from the document read "
        "model (members)",
        list_tracks,
        "documents",
        responses={200: schemas.TRACKS},
        errors=(404,),
    ),
]
