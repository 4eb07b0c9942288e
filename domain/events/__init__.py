"""The studio's events, the streams they are appended to, and their payload codecs.

Streams: a project's `project-{id}`, a user's `user-{id}`.

On a project's stream (collaboration: jacameno.collab):

    doc.updated          data: the Yjs v1 update exactly as received
                         metadata: user_id, connection_id, node, client_id (the Yjs client whose
                         structs the update carries; None if none or several: then client_ids);
                         a server-side edit (restore, AI results) has no connection_id (null)
                         and says what made it in `via`; an edit a dead node had broadcast
                         early, brought back by another user's socket, is its author's, with
                         that socket's user in `brought_by` (jacameno.collab.ledger)
    doc.restored         data: JSON {version, path, update_version}: `user_id` (metadata) made
                         the document (or the part at `path`; null: all of it) what it was at
                         `version`, by the doc.updated at `update_version` (via "restore";
                         null: it already was, nothing was written). Appended just after it.
    session.joined       data: JSON {user_id, connection_id, role, node, dialect}
    session.left         data: JSON {user_id, connection_id, node, seconds, code}
                         (the connection id holds client-chosen text only in a safe form)

On a project's stream (commands: jacameno.projects; data is a JSON object, metadata carries the
acting `user_id`; folded by projections.projects):

    project.created      {"title"}            the actor is not yet a member: a member.added follows
    project.renamed      {"title"}
    project.deleted      {}                   the row stays, marked deleted; the log keeps all
    member.added         {"user_id", "role"}
    member.role_changed  {"user_id", "role"}
    member.removed       {"user_id"}

On a user's stream (jacameno.accounts):

    user.deleted         data: JSON {user_id}; metadata: user_id
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from crdt import UpdateSummary
from eventstore import NewEvent

PROJECT_STREAM_PREFIX = "project-"
USER_STREAM_PREFIX = "user-"

DOC_UPDATED = "doc.updated"
DOC_RESTORED = "doc.restored"
SESSION_JOINED = "session.joined"
SESSION_LEFT = "session.left"

PROJECT_CREATED = "project.created"
PROJECT_RENAMED = "project.renamed"
PROJECT_DELETED = "project.deleted"
MEMBER_ADDED = "member.added"
MEMBER_ROLE_CHANGED = "member.role_changed"
MEMBER_REMOVED = "member.removed"
PROJECT_EVENT_TYPES = frozenset(
    {
        PROJECT_CREATED,
        PROJECT_RENAMED,
        PROJECT_DELETED,
        MEMBER_ADDED,
        MEMBER_ROLE_CHANGED,
        MEMBER_REMOVED,
    }
)

USER_DELETED = "user.deleted"


def stream_name(project_id: str) -> str:
    """The stream of project `project_id`."""
    return f"{PROJECT_STREAM_PREFIX}{project_id}"


def user_stream(user_id: str) -> str:
    return f"{USER_STREAM_PREFIX}{user_id}"


def is_project_stream(stream: str) -> bool:
    return stream.startswith(PROJECT_STREAM_PREFIX)


def project_of(stream: str) -> str:
    """The project id of a project's stream."""
    return stream.removeprefix(PROJECT_STREAM_PREFIX)


def user_of(stream: str) -> str:
    """The user id of a user's stream."""
    return stream.removeprefix(USER_STREAM_PREFIX)


def encode(data: dict[str, Any]) -> bytes:
    """The data of a project command's event."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes) -> dict[str, Any]:
    """The data of a project command's event (empty data: {})."""
    decoded: dict[str, Any] = json.loads(data) if data else {}
    return decoded


def origin(metadata: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Who made an event and from where, as its metadata says: its user id, connection id and
    node, each None where the metadata has none (or not as text)."""
    found = (metadata.get(key) for key in ("user_id", "connection_id", "node"))
    user, connection, node = (value if isinstance(value, str) else None for value in found)
    return user, connection, node


def doc_updated(
    update: bytes,
    summary: UpdateSummary,
    *,
    user_id: str,
    node: str,
    connection_id: str | None = None,
    via: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> NewEvent:
    """A socket's edit (`connection_id`), or a server-side one (`via`: what made it, and
    `context`: more of its metadata, such as what a restore restored)."""
    clients = sorted(set(summary.clients))
    metadata: dict[str, Any] = {
        "user_id": user_id,
        "connection_id": connection_id,
        "node": node,
        "client_id": clients[0] if len(clients) == 1 else None,
    }
    if via is not None:
        metadata["via"] = via
    metadata.update(context or {})
    if len(clients) > 1:
        metadata["client_ids"] = clients
    return NewEvent(DOC_UPDATED, update, metadata)


def doc_restored(
    *, version: int, path: str | None, update_version: int | None, user_id: str
) -> NewEvent:
    """A restore of the document (or the part at `path`) to its content at `version`."""
    data = {"version": version, "path": path, "update_version": update_version}
    return NewEvent(DOC_RESTORED, encode(data), {"user_id": user_id})


def session_event(
    kind: str, *, user_id: str, connection_id: str, node: str, **data: Any
) -> NewEvent:
    body = {"user_id": user_id, "connection_id": connection_id, "node": node, **data}
    metadata = {"user_id": user_id, "connection_id": connection_id, "node": node}
    return NewEvent(kind, json.dumps(body, separators=(",", ":")).encode(), metadata)


def user_deleted(user_id: str) -> NewEvent:
    data = json.dumps({"user_id": user_id}).encode()
    return NewEvent(USER_DELETED, data, {"user_id": user_id})
