"""Which snapshots a stream keeps (eventstore.limits.Limits.snapshots_kept): the newest, and the
highest of each span of versions, spans widening with the stream's length and the document's
size. The backends' conformance suite checks that each applies it."""

from __future__ import annotations

from eventstore import Limits

MIB = 1024 * 1024


def test_spans_widen_as_the_stream_grows() -> None:
    limits = Limits(snapshot_spacing=1000, spaced_snapshots=128)
    assert limits.snapshot_span(5_000) == 1000
    assert limits.snapshot_span(127_999) == 1000
    assert limits.snapshot_span(128_000) == 2000
    assert limits.snapshot_span(1_000_000) == 8000


def test_large_documents_keep_fewer_spans() -> None:
    limits = Limits(snapshot_spacing=1000, spaced_snapshots=128, spaced_snapshot_bytes=100 * MIB)
    assert limits.snapshot_span(50_000, size=1 * MIB) == 1000  # 100 spans allowed
    assert limits.snapshot_span(50_000, size=10 * MIB) == 8000  # 10 spans allowed
    assert limits.snapshot_span(50_000, size=200 * MIB) == 0  # not even one


def test_the_newest_and_the_highest_of_each_span_are_kept() -> None:
    limits = Limits(snapshots_per_stream=2, snapshot_spacing=10)
    versions = [3, 8, 12, 19, 25, 27, 29]
    assert limits.snapshots_kept(versions, 29) == {8, 19, 27, 29}
    assert Limits(snapshots_per_stream=2, snapshot_spacing=0).snapshots_kept(versions, 29) == {
        27,
        29,
    }
