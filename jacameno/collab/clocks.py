"""Per Yjs client, an upper bound of a document's clock: which updates may be repeats, without
encoding the document's state vector (which grows with every client that ever edited) for each
update."""

from __future__ import annotations

from crdt.update import UpdateSummary, check_state_vector


class ClockBound:
    def __init__(self, state_vector: bytes) -> None:
        self._clocks = check_state_vector(state_vector)

    def covers(self, summary: UpdateSummary) -> bool:
        """Whether every clock the update names is within the bound. An update that is not is
        certainly new; one that is may still change the document (its transaction tells)."""
        clocks = self._clocks
        return all(clocks.get(client, 0) >= end for client, end in summary.ends)

    def advance(self, summary: UpdateSummary) -> None:
        """Raise the bound to the clocks the update names."""
        clocks = self._clocks
        for client, end in summary.ends:
            if clocks.get(client, 0) < end:
                clocks[client] = end
