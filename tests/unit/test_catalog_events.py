import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.events import catalog as ev


def published(**extra: object) -> ev.PublishedTrack:
    fields: dict[str, object] = {
        "track_id": "t1",
        "project_id": "p1",
        "asset_id": "a1",
        "user_id": "u1",
        "title": "Nuit é",
        "artists": ["Ana"],
        "genre": "Jazz",
        "visibility": "public",
        "description": None,
        "cover_asset_id": None,
        "duration": 2.5,
        "format": "WAV",
    } | extra
    return ev.PublishedTrack(**fields)  # type: ignore[arg-type]


def test_a_published_track_reads_back_as_written() -> None:
    event = ev.track_published(published(), request_id="r1")
    assert event.type == ev.TRACK_PUBLISHED
    assert event.metadata == {"user_id": "u1", "request_id": "r1"}
    assert ev.read_track_published(event.data) == published()


@pytest.mark.parametrize(
    "data", [b"[]", b"{", b'{"title": "x"}', ev.track_published(published(visibility="x")).data]
)
def test_other_published_payloads_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"not a track\.published"):
        ev.read_track_published(data)


def test_a_play_names_its_listener_user_first() -> None:
    assert ev.listener("u1", "d1") == "user:u1"
    assert ev.listener(None, "d1") == "device:d1"
    with pytest.raises(ValueError, match="a user or a device"):
        ev.listener(None, None)
    anonymous = ev.track_played("device:d1", actor=None)
    assert anonymous.metadata == {}
    assert ev.read_track_played(anonymous.data) == "device:d1"
    with pytest.raises(ValueError, match=r"not a track\.played"):
        ev.read_track_played(b'{"listener": "someone"}')


def test_a_batch_of_plays_keeps_its_order_and_shares_each_actors_metadata() -> None:
    plays = [("device:d1", None), ("user:u1", "u1"), ("device:d2", None), ("user:u1", "u1")]
    made = ev.track_plays(plays, request_id="r1")
    assert [ev.read_track_played(e.data) for e in made] == [who for who, _ in plays]
    assert [e.metadata for e in made] == [
        {"request_id": "r1"},
        {"user_id": "u1", "request_id": "r1"},
        {"request_id": "r1"},
        {"user_id": "u1", "request_id": "r1"},
    ]
    # One object per actor, so an append encodes it once (eventstore.limits.check_events).
    assert made[0].metadata is made[2].metadata
    assert made[1].metadata is made[3].metadata
    assert made[0].metadata is not made[1].metadata


@given(st.text())
def test_a_play_reads_as_the_json_parser_reads_it(who: str) -> None:
    for payload in (
        ev.track_played("device:" + who, actor=None).data,  # as written
        b'{"listener":"device:' + who.encode(errors="surrogatepass") + b'"}',  # raw, unescaped
        b'{"listener": "device:' + who.encode(errors="surrogatepass") + b'"}',
    ):
        try:
            parsed = json.loads(payload)["listener"]
        except ValueError:
            parsed = None
        if not isinstance(parsed, str):
            with pytest.raises(ValueError, match=r"not a track\.played"):
                ev.read_track_played(payload)
        else:
            assert ev.read_track_played(payload) == parsed


def test_an_update_keeps_only_the_track_fields() -> None:
    event = ev.event(ev.TRACK_UPDATED, {"title": "B", "plays": 9}, actor="u1")
    assert ev.read_track_updated(event.data) == {"title": "B"}
    with pytest.raises(ValueError, match="visibility"):
        ev.read_track_updated(b'{"visibility": "secret"}')


def test_streams_and_types() -> None:
    assert ev.track_of(ev.track_stream("t1")) == "t1"
    assert ev.is_track_stream("track-t1")
    assert not ev.is_track_stream("project-t1")
    assert ev.playlist_of(ev.playlist_stream("l1")) == "l1"
    assert ev.is_playlist_stream("playlist-l1")
    with pytest.raises(ValueError, match="not a catalog event type"):
        ev.event("doc.updated", {}, actor="u1")
