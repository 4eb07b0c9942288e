"""Who made an update a client brings back after a node's death: the ledger's records of a project
(jacameno.collab.ledger) that its log may still lack, and the authors they give an update.

A Yjs client's new structs in an update (its clocks past the document's) are another user's when
they all lie within clocks that one user's socket was recorded sending, and that user is not the
one whose socket brings them: the edit a dead node broadcast early and never logged, coming back
through another client. Anything else (the bringer's own client, clocks nobody was recorded
sending, a client of which only some new clocks were recorded, records of two users for one
client) is the bringer's, as any update is its sender's.

An update that holds several authors' structs (a client that saw a lost edit and had typed edits
of its own that were lost too) is cut by author (`crdt.split.apart`): each other author's
structs are logged as an update of their own under that author, the rest with the delete set
last under the bringer. The parts are ordered so that each applies at once where it is replayed
(what an author's structs were typed beside comes before them); when no such order exists (the
authors typed beside each other's lost text, or beside the bringer's), the update is logged
whole under the bringer: a part left pending until a later one would show in the read models as
the later part's."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pycrdt import Doc

from crdt.split import apart, names
from crdt.update import Run, UpdateSummary, check_state_vector, check_update
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

    def authors(
        self, runs: Sequence[Run], clocks: Mapping[int, int], bringer: str
    ) -> dict[int, str]:
        """By Yjs client, the user other than `bringer` whose recorded clocks hold every struct
        of that client in `runs` past `clocks` (the document's state vector before the update);
        the clients left out are the bringer's. Records the document holds by now are
        forgotten."""
        self._keep([s for sent in self._by_client.values() for s in sent], clocks)
        found: dict[int, str | None] = {}  # None: the bringer's
        for run in runs:
            start, end = max(run.clock, clocks.get(run.client, 0)), run.clock + run.length
            if start >= end or found.get(run.client, "") is None:
                continue  # the document has it, or the client is the bringer's already
            covering = {
                s.user_id
                for s in self._by_client.get(run.client, ())
                if s.start <= start and end <= s.end
            }
            user = covering.pop() if len(covering) == 1 else None
            if user == bringer or found.get(run.client, user) != user:
                user = None
            found[run.client] = user
        return {client: user for client, user in found.items() if user is not None}

    def _keep(self, sent: Iterable[Sent], clocks: Mapping[int, int]) -> None:
        by_client: dict[int, list[Sent]] = {}
        for s in sent:
            if s.end > clocks.get(s.client, 0):
                by_client.setdefault(s.client, []).append(s)
        self._by_client = by_client


class Part(NamedTuple):
    """An update to log, and its author: None for the socket's own user."""

    update: bytes
    summary: UpdateSummary
    author: str | None


def parts(
    update: bytes, summary: UpdateSummary, authors: Mapping[int, str], clocks: Mapping[int, int]
) -> list[Part]:
    """`update` as the updates to log, in order, each with its author (`authors`: by client,
    those other than the bringer's; `clocks`: the document's state vector before it)."""
    if not authors:
        return [Part(update, summary, None)]
    by_author: dict[str, set[int]] = {}
    for client, user in authors.items():
        by_author.setdefault(user, set()).add(client)
    theirs = set(authors)
    rest = [client for client in summary.clients if client not in theirs]
    if not rest and len(by_author) == 1:
        return [Part(update, summary, next(iter(by_author)))]
    # Each author's part must come after the parts holding what its structs name.
    needs = {user: names(update, clients, clocks) for user, clients in by_author.items()}
    if any(needed & set(rest) for needed in needs.values()):
        return [Part(update, summary, None)]
    ordered: list[str] = []
    while len(ordered) < len(by_author):
        ready = [
            user
            for user in sorted(by_author)
            if user not in ordered
            and all(authors.get(c) in ordered for c in needs[user] if c in theirs)
        ]
        if not ready:  # they name each other's lost structs
            return [Part(update, summary, None)]
        ordered.append(ready[0])
    cut: list[Part] = []
    remaining = update
    for user in ordered:
        piece, remaining = apart(remaining, by_author[user])
        cut.append(Part(piece, check_update(piece), user))
    left = check_update(remaining)
    if not left.empty:
        cut.append(Part(remaining, left, None))
    return cut


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

    def attribute(
        self, update: bytes, summary: UpdateSummary, doc: Doc[Any], bringer: str
    ) -> list[Part]:
        """The update `bringer`'s socket sends, as the updates to log and their authors (see
        `parts`): itself, the bringer's, unless records the log may lack remain (after a node's
        death), which alone make it read the document's state vector."""
        recovered = self._recovered
        if recovered is None or not summary.runs:
            return [Part(update, summary, None)]
        clocks = check_state_vector(doc.get_state())
        authors = recovered.authors(summary.runs, clocks, bringer)
        if recovered.empty:
            self._recovered = None
        return parts(update, summary, authors, clocks)

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
