"""Who made an update a client brings back (jacameno.collab.recovered): only clocks one other
user was recorded sending, and that the document lacks, move an update to that user."""

from __future__ import annotations

from crdt.update import BESIDE, Run
from jacameno.collab.ledger import Sent
from jacameno.collab.recovered import Recovered


def _run(client: int, clock: int, length: int) -> Run:
    return Run(client, clock, length, BESIDE, 0, 0, False)


ALICE = [Sent(7, 10, 20, "alice", "a1")]


def test_clocks_one_other_user_sent_are_that_users() -> None:
    recovered = Recovered(ALICE, {7: 10})
    assert recovered.author([_run(7, 10, 10)], {7: 10}, "bob") == "alice"
    # what the document already has does not count: only the clocks it lacks must be covered
    assert recovered.author([_run(7, 0, 15)], {7: 12}, "bob") == "alice"


def test_anything_else_is_the_bringers() -> None:
    recovered = Recovered(ALICE, {7: 10})
    assert recovered.author([_run(7, 10, 10)], {7: 10}, "alice") is None  # her own resend
    assert recovered.author([_run(7, 10, 11)], {7: 10}, "bob") is None  # a clock past them
    assert recovered.author([_run(7, 10, 5), _run(9, 0, 1)], {7: 10}, "bob") is None  # mixed
    assert recovered.author([_run(7, 0, 10)], {7: 10}, "bob") is None  # nothing new
    assert recovered.author([], {7: 10}, "bob") is None  # deletions only
    both = Recovered([*ALICE, Sent(7, 10, 20, "carol", "c1")], {7: 10})
    assert both.author([_run(7, 10, 10)], {7: 10}, "bob") is None  # two users claim them


def test_records_the_document_holds_are_forgotten() -> None:
    assert Recovered(ALICE, {7: 20}).empty
    recovered = Recovered(ALICE, {7: 10})
    assert not recovered.empty
    assert recovered.author([_run(8, 0, 1)], {7: 20, 8: 0}, "bob") is None
    assert recovered.empty
