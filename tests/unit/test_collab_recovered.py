"""Who made an update a client brings back (jacameno.collab.recovered): only a client's clocks one
other user was recorded sending, and that the document lacks, move to that user; an update of
several authors is cut by author, in an order where each part applies at once, or stays whole."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from crdt import document
from crdt.update import BESIDE, Run, check_state_vector, check_update
from jacameno.collab.ledger import Sent
from jacameno.collab.recovered import Part, Recovered, parts


def _run(client: int, clock: int, length: int) -> Run:
    return Run(client, clock, length, BESIDE, 0, 0, False)


ALICE = [Sent(7, 10, 20, "alice", "a1")]


def test_clocks_one_other_user_sent_are_that_users() -> None:
    recovered = Recovered(ALICE, {7: 10})
    assert recovered.authors([_run(7, 10, 10)], {7: 10}, "bob") == {7: "alice"}
    # what the document already has does not count: only the clocks it lacks must be covered
    assert recovered.authors([_run(7, 0, 15)], {7: 12}, "bob") == {7: "alice"}
    # the bringer's own client beside them stays the bringer's
    assert recovered.authors([_run(7, 10, 5), _run(9, 0, 1)], {7: 10}, "bob") == {7: "alice"}


def test_anything_else_is_the_bringers() -> None:
    recovered = Recovered(ALICE, {7: 10})
    assert recovered.authors([_run(7, 10, 10)], {7: 10}, "alice") == {}  # her own resend
    assert recovered.authors([_run(7, 10, 11)], {7: 10}, "bob") == {}  # a clock past them
    assert recovered.authors([_run(7, 10, 2), _run(7, 30, 1)], {7: 10}, "bob") == {}
    assert recovered.authors([_run(7, 0, 10)], {7: 10}, "bob") == {}  # nothing new
    assert recovered.authors([], {7: 10}, "bob") == {}  # deletions only
    both = Recovered([*ALICE, Sent(7, 10, 20, "carol", "c1")], {7: 10})
    assert both.authors([_run(7, 10, 10)], {7: 10}, "bob") == {}  # two users claim them


def test_records_the_document_holds_are_forgotten() -> None:
    assert Recovered(ALICE, {7: 20}).empty
    recovered = Recovered(ALICE, {7: 10})
    assert not recovered.empty
    assert recovered.authors([_run(8, 0, 1)], {7: 20, 8: 0}, "bob") == {}
    assert recovered.empty


def _typed(base: Doc[Any], client: int, text: str, index: int = 0) -> None:
    """`text` typed into `base`'s lyrics at `index` by a client of id `client`."""
    typist: Doc[Any] = Doc(client_id=client)
    typist.apply_update(base.get_update())
    typist.get("lyrics", type=Text).insert(index, text)
    base.apply_update(typist.get_update(base.get_state()))


def _setup() -> tuple[Doc[Any], dict[int, int]]:
    """A document the server has ("first "), and its state vector."""
    server: Doc[Any] = Doc(client_id=1)
    server.get("lyrics", type=Text).insert(0, "first ")
    return server, check_state_vector(server.get_state())


def _replayed(server: Doc[Any], cut: list[Part]) -> str:
    doc = document.build(server.get_update(), [part.update for part in cut])
    return str(doc.get("lyrics", type=Text))


def test_an_update_of_several_authors_is_cut_by_author() -> None:
    server, clocks = _setup()
    held: Doc[Any] = Doc()
    held.apply_update(server.get_update())
    _typed(held, 7, "lost ")  # Alice's, which the node died holding
    _typed(held, 9, "mine ")  # then Bob's own, typed before hers
    update = held.get_update(server.get_state())
    cut = parts(update, check_update(update), {7: "alice"}, clocks)
    assert [(p.author, p.summary.clients) for p in cut] == [("alice", (7,)), (None, (9,))]
    assert _replayed(server, cut) == "mine lost first "
    # each part applies at once: Alice's first, then Bob's, typed beside hers
    doc = document.build(server.get_update(), [cut[0].update])
    assert str(doc.get("lyrics", type=Text)) == "lost first "


def test_an_author_typed_beside_the_bringers_lost_text_leaves_the_update_whole() -> None:
    server, clocks = _setup()
    held: Doc[Any] = Doc()
    held.apply_update(server.get_update())
    _typed(held, 9, "bob ")  # Bob's, lost too
    _typed(held, 7, "alice ", index=len("bob "))  # Alice's, typed after Bob's text
    update = held.get_update(server.get_state())
    summary = check_update(update)
    assert parts(update, summary, {7: "alice"}, clocks) == [Part(update, summary, None)]


def test_one_other_author_alone_takes_the_update_whole() -> None:
    server, clocks = _setup()
    held: Doc[Any] = Doc()
    held.apply_update(server.get_update())
    _typed(held, 7, "lost ")
    update = held.get_update(server.get_state())
    summary = check_update(update)
    assert parts(update, summary, {7: "alice"}, clocks) == [Part(update, summary, "alice")]
    assert parts(update, summary, {}, clocks) == [Part(update, summary, None)]
