"""One Yjs update cut into several, each at most a given size, that applied in order make the same
document as the whole: for a server-side edit (a restore) larger than an update may be
(`JACAMENO_COLLAB_MAX_MESSAGE_BYTES`), so that the log, the bus and every client take it as
updates of the usual size.

Only an update of one client's structs is cut (a server-side edit's: one Doc's transaction): its
structs are consecutive clocks, and each names only items of lower clocks or of other clients
that the receiver has (its origins and its parent existed when it was made), so a run of them,
from its first clock, is an update of its own, and the runs applied in clock order never wait
for one another. (Several clients' structs may name one another's in any order: cutting them
would leave parts pending until later ones arrive.)
The delete set (which may name the update's own new items) comes after every struct, cut by
ranges; `max_deleted` also bounds the clocks each of its parts deletes, since yrs's garbage
collection costs about 25 us per deleted item when the part is applied (the room applies it on
its event loop). A range is never cut between the two UTF-16 units of one character (an emoji):
yrs would split the character and mangle the text; the document the update applies to says
where its characters are.

`apart` cuts an update by client instead (the node's ledger gives a lost edit brought back by
another client to its author, jacameno.collab.recovered), and `names` says which clients' new
structs a part's structs name, so that the parts can be logged in an order where each applies at
once."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from crdt.encoding import write_var_uint
from crdt.update import MAX_CLOCK, Struct, delete_set, halves, structs

_NO_DELETIONS = b"\x00"
_FRAME = 4  # an update's group count (up to 3 bytes) and its empty delete set


class CannotSplit(ValueError):
    """One struct of the update alone is larger than the limit, or the update that must be cut
    holds structs of several clients."""


def split(
    update: bytes, limit: int, max_deleted: int | None = None, document: bytes = b""
) -> list[bytes]:
    """`update` (one that `check_update` passed) as updates of at most `limit` bytes, to apply
    in order; `[update]` if it fits and deletes at most `max_deleted` clocks (one more where a
    cut would fall inside a character). `document`: the whole state of the document `update`
    applies to (read only when a deleted range must be cut). CannotSplit if a single struct
    does not fit, or if structs of several clients would be cut."""
    if max_deleted is not None and max_deleted < 1:
        raise ValueError("max_deleted must be at least 1")
    groups, deletes_at = structs(update)
    deletions = delete_set(update, deletes_at)
    if len(update) <= limit and (
        max_deleted is None
        or sum(length for _, runs in deletions for _, length in runs) <= max_deleted
    ):
        return [update]
    if len(groups) > 1:
        raise CannotSplit(f"the update holds structs of {len(groups)} clients: only one's are cut")
    parts = _struct_parts(update, groups, limit)
    parts.extend(_delete_parts(deletions, limit, max_deleted, lambda: _halves(document, update)))
    return parts


def _halves(document: bytes, update: bytes) -> set[tuple[int, int]]:
    """Where a deleted range may not be cut: inside a character of the document's strings or of
    the update's own (its delete set may delete what it types)."""
    return (halves(document) if document else set()) | halves(update)


def _struct_parts(update: bytes, groups: list[tuple[int, list[Struct]]], limit: int) -> list[bytes]:
    """The structs, in the update's order, packed into updates without deletions."""
    parts: list[bytes] = []
    body: list[bytes] = []  # the current part's groups, encoded
    size = _FRAME

    def close() -> None:
        nonlocal body, size
        if body:
            parts.append(write_var_uint(len(body)) + b"".join(body) + _NO_DELETIONS)
        body, size = [], _FRAME

    for client, found in groups:
        run: list[Struct] = []
        run_bytes = 0
        for struct in found:
            head = _group_head(client, (run or [struct])[0].clock, len(run) + 1)
            if size + len(head) + run_bytes + struct.end - struct.start > limit:
                if run:
                    body.append(_group(update, client, run))
                close()
                run, run_bytes = [], 0
                head = _group_head(client, struct.clock, 1)
                if size + len(head) + struct.end - struct.start > limit:
                    raise CannotSplit(
                        f"a struct of {struct.end - struct.start} bytes does not fit in an update"
                        f" of {limit} bytes"
                    )
            run.append(struct)
            run_bytes += struct.end - struct.start
        if run:
            body.append(_group(update, client, run))
            size += len(body[-1])
    close()
    return parts


def _group_head(client: int, clock: int, count: int) -> bytes:
    return write_var_uint(count) + write_var_uint(client) + write_var_uint(clock)


def _group(update: bytes, client: int, run: list[Struct]) -> bytes:
    """A group of `client`'s consecutive structs `run`, as the update encodes one."""
    return _group_head(client, run[0].clock, len(run)) + update[run[0].start : run[-1].end]


def _delete_parts(
    deletions: list[tuple[int, list[tuple[int, int]]]],
    limit: int,
    max_deleted: int | None,
    inside: Callable[[], set[tuple[int, int]]],
) -> list[bytes]:
    """The delete set as updates without structs, each at most `limit` bytes and deleting at
    most `max_deleted` clocks. A range is kept whole (a type and what it holds, deleted
    together, are one range of its author's) unless it alone deletes more than that."""
    most = max_deleted if max_deleted is not None else MAX_CLOCK + 1
    parts: list[bytes] = []
    part: list[tuple[int, list[bytes]]] = []  # (client, its encoded ranges)
    size = 4  # no structs, the client count, slack for the counts' varuints
    deleted = 0
    unsplit: set[tuple[int, int]] | None = None  # read at the first cut inside a range

    def close() -> None:
        nonlocal part, size, deleted
        if part:
            encoded = [write_var_uint(len(part))]
            for client, ranges in part:
                encoded += [write_var_uint(client), write_var_uint(len(ranges)), *ranges]
            parts.append(b"\x00" + b"".join(encoded))
        part, size, deleted = [], 4, 0

    for client, ranges in deletions:
        head = len(write_var_uint(client)) + 5  # the client, its range count
        for clock, length in ranges:
            if deleted and deleted + length > most:
                close()  # a range is cut only when it alone deletes more than `most`
            while length:
                if deleted >= most:
                    close()
                taken = min(length, most - deleted)
                if taken < length:  # a cut: never inside a character
                    unsplit = inside() if unsplit is None else unsplit
                    if (client, clock + taken) in unsplit:
                        taken += 1
                encoded = write_var_uint(clock) + write_var_uint(taken)
                opening = not part or part[-1][0] != client
                if size + len(encoded) + (head if opening else 0) > limit:
                    close()
                    opening = True
                if opening:
                    part.append((client, []))
                    size += head
                part[-1][1].append(encoded)
                size += len(encoded)
                deleted += taken
                clock += taken
                length -= taken
    close()
    return parts


def apart(update: bytes, clients: Collection[int]) -> tuple[bytes, bytes]:
    """`update` (one that `check_update` passed) as two updates: the structs of `clients`, without
    deletions, and the other structs with the update's whole delete set. Applied in either order
    they make the same document as the whole (yrs keeps a struct whose origin has not arrived
    pending until it does); `names` tells which order lets each apply at once."""
    groups, deletes_at = structs(update)
    mine = [(client, found) for client, found in groups if client in clients and found]
    rest = [(client, found) for client, found in groups if client not in clients and found]

    def encoded(part: list[tuple[int, list[Struct]]], deletions: bytes) -> bytes:
        body = b"".join(_group(update, client, found) for client, found in part)
        return write_var_uint(len(part)) + body + deletions

    return encoded(mine, _NO_DELETIONS), encoded(rest, update[deletes_at:])


def names(update: bytes, clients: Collection[int], new: Mapping[int, int]) -> set[int]:
    """The clients other than `clients` whose items from clock `new[client]` on (those the
    update brings to a document whose state vector is `new`) the structs of `clients` name as
    their origin, right origin or parent: what must be applied before them. For an update that
    `check_update` passed; MalformedUpdate otherwise."""
    found: set[int] = set()
    for client, items in structs(update)[0]:
        if client not in clients:
            continue
        for item in items:
            for named in (item.neighbour, item.right, item.parent):
                if (
                    isinstance(named, tuple)
                    and named[0] not in clients
                    and named[1] >= new.get(named[0], 0)
                ):
                    found.add(named[0])
    return found
