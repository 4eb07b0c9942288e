"""Live collaboration: rooms of live Yjs documents behind the y-websocket protocol.

Every document update is validated, appended to the project's stream (`doc.updated`) and only
then applied for others to see: broadcast to the room, the sender's echo included. Awareness is
relayed and never logged. See docs/collaboration.md."""
