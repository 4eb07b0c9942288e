"""Who made an update a client brings back after a node's death: the ledger's records of a project
(jacameno.collab.ledger) that its log may still lack, and the author they give an update.

An update is another user's when every struct it adds to the document (its clocks past the
document's) lies within clocks that one user's socket was recorded sending, and that user is not
the one whose socket brings it: the edit a dead node broadcast early and never logged, coming
back through another client. Anything else (structs of the bringer's own client, clocks nobody
was recorded sending, records of two users for one client) is the bringer's, as for any update:
an update that mixes another user's lost edit with the bringer's own is logged whole under the
bringer (a Yjs update cannot be cut by author without leaving parts pending, crdt/split.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pycrdt import Doc

from crdt.update import Run, UpdateSummary, check_state_vector
from jacameno.collab.ledger import EarlyLedger, Sent
from jacameno.collab.peer import Peer

logger = logging.getLogger(__name__)


class Recovered:
    def __init__(self, sent: Iterable[Sent], clocks: Mapping[int, int]) -> None:
        """`sent`: the ledger's records; `clocks`: the document's state vector (records the
        document already holds are dropped)."""
        self._by_client: dict[int, list[Sent]] = {}
        self._keep(sent, clocks)

    @property
    def empty(self) -> bool:
        """Whether no record may still name clocks the document lacks."""
        return not self._by_client

    def author(self, runs: Sequence[Run], clocks: Mapping[int, int], bringer: str) -> str | None:
        """The user other than `bringer` whose recorded clocks hold every struct of `runs` past
        `clocks` (the document's state vector before the update); None if there is none (the
        update is the bringer's). Records the document holds by now are forgotten."""
        self._keep([s for sent in self._by_client.values() for s in sent], clocks)
        users: set[str] = set()
        for run in runs:
            start, end = max(run.clock, clocks.get(run.client, 0)), run.clock + run.length
            if start >= end:
                continue  # the document has it
            covering = {
                s.user_id
                for s in self._by_client.get(run.client, ())
                if s.start <= start and end <= s.end
            }
            if len(covering) != 1:
                return None
            users |= covering
        if len(users) != 1:
            return None
        user = users.pop()
        return None if user == bringer else user

    def _keep(self, sent: Iterable[Sent], clocks: Mapping[int, int]) -> None:
        by_client: dict[int, list[Sent]] = {}
        for s in sent:
            if s.end > clocks.get(s.client, 0):
                by_client.setdefault(s.client, []).append(s)
        self._by_client = by_client


class Witness:
    """A room's side of the ledger: what its sockets are sent early is recorded (`sent`), and an
    update is given the author the records of a dead node name (`author`)."""

    def __init__(self, ledger: EarlyLedger, project_id: str) -> None:
        self._ledger = ledger
        self._project_id = project_id
        self._recovered: Recovered | None = None  # None while no record may matter

    async def recall(self, peer: Peer, doc: Doc[Any]) -> None:
        """Read the ledger's records of the project, once per socket, before its first update
        that is certainly new (`ClockBound.covers`): a socket brings a dead node's edits back in
        its sync step 2, on a room loaded before or after the death. A ledger that cannot be
        read leaves the update its sender's (a warning)."""
        peer.recalled = True
        try:
            sent = await self._ledger.recall(self._project_id)
        except Exception as exc:
            logger.warning(
                "early broadcasts not recalled",
                extra={
                    "action": "collab.recall_failed",
                    "project": self._project_id,
                    "error": repr(exc),
                },
            )
            return
        recovered = Recovered(sent, check_state_vector(doc.get_state()))
        self._recovered = None if recovered.empty else recovered

    def author(self, summary: UpdateSummary, doc: Doc[Any], bringer: str) -> str | None:
        """The user who made the update `bringer`'s socket sends, if the records say it is
        another's (see `Recovered.author`); None: the bringer's. Reads the document's state
        vector only while records the log may lack remain (after a node's death)."""
        recovered = self._recovered
        if recovered is None or not summary.runs:
            return None
        author = recovered.author(summary.runs, check_state_vector(doc.get_state()), bringer)
        if recovered.empty:
            self._recovered = None
        return author

    def sent(self, summary: UpdateSummary, user_id: str, connection_id: str) -> None:
        """Record that the update's structs were sent to the room's sockets for `user_id`."""
        spans: dict[int, list[int]] = {}
        for run in summary.runs:
            end = run.clock + run.length
            span = spans.get(run.client)
            if span is None:
                spans[run.client] = [run.clock, end]
            else:
                span[0], span[1] = min(span[0], run.clock), max(span[1], end)
        for client, (start, end) in spans.items():
            self._ledger.record(self._project_id, Sent(client, start, end, user_id, connection_id))
