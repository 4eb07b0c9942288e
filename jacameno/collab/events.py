"""The events collaboration appends to a project's stream (`project-{id}`).

doc.updated      data: the Yjs v1 update exactly as received
                 metadata: user_id, connection_id, node, client_id (the Yjs client whose
                 structs the update carries; None if none or several: then client_ids)
session.joined   data: JSON {user_id, connection_id, role, node, dialect}
session.left     data: JSON {user_id, connection_id, node, seconds, code}
                 (both appended apart from document updates: jacameno.collab.sessions; the
                 connection id holds client-chosen text only in a safe form)
"""

from __future__ import annotations

import json
from typing import Any

from eventstore import NewEvent
from jacameno.collab.update import UpdateSummary

DOC_UPDATED = "doc.updated"
SESSION_JOINED = "session.joined"
SESSION_LEFT = "session.left"


def stream_name(project_id: str) -> str:
    return f"project-{project_id}"


def doc_updated(
    update: bytes, summary: UpdateSummary, *, user_id: str, connection_id: str, node: str
) -> NewEvent:
    clients = sorted(set(summary.clients))
    metadata: dict[str, Any] = {
        "user_id": user_id,
        "connection_id": connection_id,
        "node": node,
        "client_id": clients[0] if len(clients) == 1 else None,
    }
    if len(clients) > 1:
        metadata["client_ids"] = clients
    return NewEvent(DOC_UPDATED, update, metadata)


def session_event(
    kind: str, *, user_id: str, connection_id: str, node: str, **data: Any
) -> NewEvent:
    body = {"user_id": user_id, "connection_id": connection_id, "node": node, **data}
    metadata = {"user_id": user_id, "connection_id": connection_id, "node": node}
    return NewEvent(kind, json.dumps(body, separators=(",", ":")).encode(), metadata)
