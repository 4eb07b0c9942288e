"""How long a node's rooms take, for its metrics (`jacameno_collab_ack_seconds`,
`jacameno_collab_append_seconds`, `jacameno_collab_join_seconds`; jacameno.metrics): what the
server itself adds to an edit's durable acknowledgement, beside what the log's commit takes, and
to a newcomer's sync.

- `acknowledged`: for each logged update of a socket, from the moment the frame that carried it
  reached the server (the WebSocket protocol's `data_received`; where the server offers no
  such stamp, the moment the app read the frame) to the moment its acknowledgement was handed
  to the sender's socket (the y-websocket echo, Hocuspocus's SyncStatus); the socket writes it
  at the end of that turn of the event loop. Only updates acknowledged after their commit are
  counted: a no-op update, acknowledged without one, is not.
- `appended`: each append of a room's pending updates to the log, from the call to its answer
  (the store's group commit: its wait for a commit in flight, the statement and the disk's
  flush).
- `synced`: for each socket's document, from the moment its way in reached the server (a
  y-websocket upgrade request; a Hocuspocus document's authentication message) to the moment
  the whole document it lacks (sync step 2) was handed to the socket: admission, the room's
  load, waiting for the updates in flight to commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


def _ignore(seconds: float) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Timings:
    """Where the rooms report their timings, in seconds (nowhere by default)."""

    acknowledged: Callable[[float], None] = _ignore
    appended: Callable[[float], None] = _ignore
    synced: Callable[[float], None] = _ignore
