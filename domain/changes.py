"""What an update changed, in the studio's words, from the plain document before and after it
(`domain.document.plain`): "added track Bass", "set Vocals volume from -3 dB to -6 dB", "typed 12
characters in lyrics". Each change has a `path` (`meta/bpm`, `tracks/<id>/volume_db`,
`tracks/<id>/clips/<id>/start`, `lyrics`, `comments/<id>`, `markers/<id>`, or another root's
name) that history filters on. Tracks, clips and comments are matched by id, markers by id or
else by position; what does not fit the schema is described as "changed <root>". docs/history.md
says how summaries are made and where they fall short. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crdt.textdiff import common_ends
from domain import events
from domain.document import SCHEMA_ROOTS

TYPED = "lyrics.typed"
DELETED = "lyrics.deleted"
TYPING = frozenset({TYPED, DELETED})
_MISSING: Any = object()  # a key one side of a map does not have (None is a value it may hold)


@dataclass(frozen=True, slots=True)
class Change:
    """One change: its kind (`track.added`, `lyrics.typed`, ...), where it is, and the sentence.
    `count` is the number of characters of a lyrics change (0 otherwise). `before` and `after`
    are the plain values at `path` on either side (None where there was none: an added item has
    no `before`); a reorder holds the ids in order, a lyrics change neither (its text is diffed
    apart, projections.diff)."""

    kind: str
    path: str
    summary: str
    count: int = 0
    before: Any = None
    after: Any = None


def changes(
    before: dict[str, Any],
    after: dict[str, Any],
    lyrics: tuple[int, int] | None = None,
    keys: Mapping[str, Collection[str]] | None = None,
) -> list[Change]:
    """What turned the plain document `before` into `after`, in document order: meta, tracks
    (and their clips), lyrics, comments, markers, then other roots. `lyrics`: the characters
    typed and deleted, as counted from the update (domain.rendering); without it, from the two
    renderings' lyrics. `keys`: by map root outside the schema, the only keys that may differ
    (domain.rendering knows which keys an update wrote); the rest of such a root is not
    compared, which keeps a map that grows by a key per update from costing each update a
    look at every key."""
    # A root that is the same object on both sides (domain.rendering keeps what an update did
    # not touch) is skipped without a look inside: it holds no change (comments read the
    # tracks only to name what a changed comment is on).
    same = {r for r in SCHEMA_ROOTS if before.get(r) is after.get(r)}
    out = [] if "meta" in same else list(_meta(_dict(before.get("meta")), _dict(after.get("meta"))))
    if "tracks" not in same:
        out += _tracks(_items(before.get("tracks")), _items(after.get("tracks")))
    if lyrics is None:
        out += _lyrics(_str(before.get("lyrics")), _str(after.get("lyrics")))
    else:
        out += _counted(*lyrics)
    if "comments" not in same:
        out += _comments(
            _items(before.get("comments")),
            _items(after.get("comments")),
            _items(after.get("tracks")),
        )
    if "markers" not in same:
        out += _markers(_items(before.get("markers")), _items(after.get("markers")))
    for root in sorted((before.keys() | after.keys()) - SCHEMA_ROOTS.keys()):
        old, new = before.get(root), after.get(root)
        written = None if keys is None else keys.get(root)
        if written is not None and isinstance(old, dict) and isinstance(new, dict):
            out += _map_keys(root, old, new, written)
        elif old != new:
            out += _other_root(root, old, new)
    return out


def _other_root(root: str, old: Any, new: Any) -> Iterator[Change]:
    """A root outside the schema: a map by its keys that changed (`root/key`, the key's values),
    an array by the run between what stayed at either end (`root/index` of the run's first
    item; before and after the runs removed and inserted, as lists, None when empty), anything
    else whole. Whole, a map or array that grows by an item per update (a chat, a plugin's log)
    made each update's change hold the root twice over, so the history's rows grew with the
    square of the edits."""
    summary = f"changed {root}"
    if isinstance(old, dict) and isinstance(new, dict):
        yield from _map_keys(root, old, new, new.keys() | old.keys())
    elif isinstance(old, list) and isinstance(new, list):
        prefix, suffix = common_ends(old, new)
        gone, came = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
        yield Change("root.changed", f"{root}/{prefix}", summary, 0, gone or None, came or None)
    else:
        yield Change("root.changed", root, summary, 0, old, new)


def _map_keys(
    root: str, old: dict[str, Any], new: dict[str, Any], keys: Collection[str]
) -> Iterator[Change]:
    """The changes of a map root outside the schema among `keys`, in key order. A value kept
    from the rendering before (domain.rendering) is the same object: compared by identity
    first, only the keys whose values differ are sorted."""
    missing = _MISSING
    changed = []
    for key in keys:
        was, now = old.get(key, missing), new.get(key, missing)
        if was is not now and was != now:
            changed.append(key)
    summary = f"changed {root}"
    for key in sorted(changed, key=str):
        yield Change("root.changed", f"{root}/{key}", summary, 0, old.get(key), new.get(key))


def touches(change_path: str, path: str) -> bool:
    """Whether a change at `change_path` concerns `path`: the same, inside it (`tracks/t1/pan`
    for `tracks/t1`), or containing it (adding track t1 sets `tracks/t1/volume_db`)."""
    return (
        change_path == path
        or change_path.startswith(path + "/")
        or path.startswith(change_path + "/")
    )


def typing_total(found: Iterable[Change]) -> list[Change]:
    """Lyrics changes added up (typed, then deleted): consecutive keystrokes as one entry."""
    typed = deleted = 0
    for change in found:
        if change.kind == TYPED:
            typed += change.count
        elif change.kind == DELETED:
            deleted += change.count
    return _counted(typed, deleted)


# -- plain values, tolerantly ---------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _by_id(items: list[dict[str, Any]]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Items with a string id (the first of a repeated id), with their position."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, item in enumerate(items):
        key = item.get("id")
        if isinstance(key, str) and key not in found:
            found[key] = (index, item)
    return found


def _repeats_an_id(items: list[dict[str, Any]]) -> bool:
    keys = [item.get("id") for item in items]
    return len(set(keys)) != len(keys)


def _aligned(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> list[tuple[int, dict[str, Any], dict[str, Any]]] | None:
    """When `before` and `after` hold items of the same distinct string ids in the same order
    (an update that added, deleted or moved none: most do), the pairs that are not the same
    object, with their index; else None. The same answer as comparing `_by_id` of each side,
    without building them for every update."""
    if len(before) != len(after):
        return None
    ids = set()
    pairs = []
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        key = new.get("id")
        if not isinstance(key, str) or key in ids:
            return None
        if old is not new:
            if old.get("id") != key:
                return None
            pairs.append((index, old, new))
        ids.add(key)
    return pairs


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _short(value: Any) -> str:
    number = _number(value)
    if number is not None:
        return f"{number:g}"
    return "nothing" if value is None else str(value)


def _seconds(value: Any) -> str:
    number = _number(value)
    if number is None:
        return _short(value)
    text = f"{number:.3f}".rstrip("0")
    return f"{text}0 s" if text.endswith(".") else f"{text} s"


def _db(value: Any) -> str:
    return f"{_short(value)} dB" if _number(value) is not None else _short(value)


def _from_to(old: Any, new: Any, show: Callable[[Any], str]) -> str:
    """ "from -3 dB to -6 dB"; "to -6 dB" when there was nothing before."""
    return f"to {show(new)}" if old is None else f"from {show(old)} to {show(new)}"


# -- meta -----------------------------------------------------------------------------------------

_META_WORDS = {"bpm": "tempo", "key": "key", "time_signature": "time signature"}


def _meta(before: dict[str, Any], after: dict[str, Any]) -> Iterator[Change]:
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        path = f"meta/{key}"
        if key == "title":
            summary = f'set the title to "{_short(new)}"'
            if new is None:
                summary = "cleared the title"
            elif old is not None:
                summary = f'renamed the project from "{_short(old)}" to "{_short(new)}"'
            yield Change("meta.title", path, summary, 0, old, new)
            continue
        word = _META_WORDS.get(key, key)
        unit = " BPM" if key == "bpm" and _number(new) is not None else ""
        if new is None:
            summary = f"cleared the {word}"
        elif old is None:
            summary = f"set the {word} to {_short(new)}{unit}"
        else:
            summary = f"set the {word} from {_short(old)} to {_short(new)}{unit}"
        yield Change(f"meta.{key}", path, summary, 0, old, new)


# -- tracks and clips -----------------------------------------------------------------------------


def _track_name(track: dict[str, Any], index: int) -> str:
    """What a track is called in a sentence: its name, else "track <position from 1>"."""
    name = track.get("name")
    return name if isinstance(name, str) and name else f"track {index + 1}"


def _track_noun(track: dict[str, Any], index: int) -> str:
    """ "track Bass", or "track 2" for one without a name."""
    name = track.get("name")
    return f"track {name}" if isinstance(name, str) and name else f"track {index + 1}"


def _tracks(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> Iterator[Change]:
    pairs = _aligned(before, after)
    if pairs is not None:
        for index, old_track, track in pairs:
            yield from _track(f"tracks/{track['id']}", old_track, index, track, index)
        return
    old, new = _by_id(before), _by_id(after)
    for key, (index, track) in new.items():
        path = f"tracks/{key}"
        if key not in old:
            yield Change("track.added", path, f"added {_track_noun(track, index)}", after=track)
            continue
        old_index, old_track = old[key]
        if old_track is not track:  # the same object: untouched by the update
            yield from _track(path, old_track, old_index, track, index)
    for key, (index, track) in old.items():
        if key not in new:
            noun = _track_noun(track, index)
            yield Change("track.deleted", f"tracks/{key}", f"deleted {noun}", before=track)
    kept_before = [k for k in old if k in new]
    kept_after = [k for k in new if k in old]
    if kept_before != kept_after:
        yield Change("track.moved", "tracks", "reordered tracks", 0, kept_before, kept_after)


def _track(
    path: str, old: dict[str, Any], old_index: int, new: dict[str, Any], index: int
) -> Iterator[Change]:
    label = _track_name(new, index)
    if old.get("name") != new.get("name"):
        summary = f"renamed {_track_noun(old, old_index)} to {label}"
        yield Change("track.renamed", f"{path}/name", summary, 0, old.get("name"), new.get("name"))
    for key, word, show in (
        ("volume_db", "volume", _db),
        ("pan", "pan", _short),
        ("color", "color", _short),
        ("kind", "kind", _short),
    ):
        if old.get(key) != new.get(key):
            summary = f"set {label} {word} {_from_to(old.get(key), new.get(key), show)}"
            yield Change(f"track.{key}", f"{path}/{key}", summary, 0, old.get(key), new.get(key))
    for key, on, off in (("muted", "muted", "unmuted"), ("solo", "soloed", "unsoloed")):
        if bool(old.get(key)) != bool(new.get(key)):
            summary = f"{on if new.get(key) else off} {label}"
            yield Change(f"track.{key}", f"{path}/{key}", summary, 0, old.get(key), new.get(key))
    if old.get("analysis") != new.get("analysis"):
        summary = f"updated the analysis of {label}"
        was, now = old.get("analysis"), new.get("analysis")
        yield Change("track.analysis", f"{path}/analysis", summary, 0, was, now)
    yield from _clips(path, label, _items(old.get("clips")), _items(new.get("clips")))
    known = {"id", "name", "volume_db", "pan", "color", "kind", "muted", "solo"}
    for key in sorted((old.keys() | new.keys()) - known - {"analysis", "clips"}):
        if old.get(key) != new.get(key):
            summary = f"changed {key} of {label}"
            yield Change("track.changed", f"{path}/{key}", summary, 0, old.get(key), new.get(key))


def _clip_name(clip: dict[str, Any], key: str) -> str:
    name = clip.get("name")
    return name if isinstance(name, str) and name else key


def _clips(
    path: str, track: str, before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> Iterator[Change]:
    pairs = _aligned(before, after)
    if pairs is not None:
        for _, prior, clip in pairs:
            yield from _clip(path, track, prior, clip)
        return
    if _repeats_an_id(before) or _repeats_an_id(after):
        # Two clips of one id (clients that added them at once): by id, one would hide the
        # other's changes. Said as a change of the track's clips, whole.
        if before != after:
            summary = f"changed the clips on {track}"
            yield Change("clips.changed", f"{path}/clips", summary, 0, before, after)
        return
    old, new = _by_id(before), _by_id(after)
    for key, (_, clip) in new.items():
        if key not in old:
            name = _clip_name(clip, key)
            at = _seconds(clip.get("start"))
            where = f"{path}/clips/{key}"
            yield Change("clip.added", where, f"added clip {name} on {track} at {at}", after=clip)
        else:
            yield from _clip(path, track, old[key][1], clip)
    for key, (_, clip) in old.items():
        if key not in new:
            name = _clip_name(clip, key)
            summary = f"deleted clip {name} on {track}"
            yield Change("clip.deleted", f"{path}/clips/{key}", summary, before=clip)


def _clip(path: str, track: str, prior: dict[str, Any], clip: dict[str, Any]) -> Iterator[Change]:
    """What changed in one clip (of the same id) on `track`."""
    key = clip["id"]
    where = f"{path}/clips/{key}"
    name = _clip_name(clip, key)
    for field, verb, show in (
        ("start", "moved", _seconds),
        ("length", "resized", _seconds),
        ("offset", "set the offset of", _seconds),
        ("gain_db", "set the gain of", _db),
    ):
        if prior.get(field) != clip.get(field):
            summary = (
                f"{verb} clip {name} on {track} {_from_to(prior.get(field), clip.get(field), show)}"
            )
            was, now = prior.get(field), clip.get(field)
            yield Change(f"clip.{field}", f"{where}/{field}", summary, 0, was, now)
    if prior.get("asset_id") != clip.get("asset_id"):
        summary = f"replaced the audio of clip {name} on {track}"
        was, now = prior.get("asset_id"), clip.get("asset_id")
        yield Change("clip.asset_id", f"{where}/asset_id", summary, 0, was, now)


# -- lyrics ---------------------------------------------------------------------------------------


def lyrics_change(kind: str, count: int) -> Change | None:
    """ "typed 12 characters in lyrics" (TYPED) or "deleted 3 ..." (DELETED); None for 0."""
    if count == 0:
        return None
    verb = "typed" if kind == TYPED else "deleted"
    noun = "character" if count == 1 else "characters"
    return Change(kind, "lyrics", f"{verb} {count} {noun} in lyrics", count)


def _counted(typed: int, deleted: int) -> list[Change]:
    found = (lyrics_change(TYPED, typed), lyrics_change(DELETED, deleted))
    return [change for change in found if change is not None]


def _lyrics(before: str, after: str) -> list[Change]:
    """Characters typed and deleted, counted outside the longest common prefix and suffix: one
    update's edits of a text are usually one run, and a replaced run reads as both."""
    if before == after:
        return []
    prefix, suffix = common_ends(before, after)
    return _counted(len(after) - prefix - suffix, len(before) - prefix - suffix)


# -- comments and markers -------------------------------------------------------------------------


def _commented_on(comment: dict[str, Any], tracks: list[dict[str, Any]]) -> str:
    """What a comment is on: a track it names (`track_id`), else the time it is at."""
    track_id = comment.get("track_id")
    for index, track in enumerate(tracks):
        if track_id is not None and track.get("id") == track_id:
            return f"commented on {_track_name(track, index)}"
    if _number(comment.get("at")) is not None:
        return f"commented at {_seconds(comment.get('at'))}"
    return "commented"


def _comments(
    before: list[dict[str, Any]], after: list[dict[str, Any]], tracks: list[dict[str, Any]]
) -> Iterator[Change]:
    old, new = _by_id(before), _by_id(after)
    for key, (_, comment) in new.items():
        path = f"comments/{key}"
        if key not in old:
            yield Change("comment.added", path, _commented_on(comment, tracks), after=comment)
            continue
        prior = old[key][1]
        if bool(prior.get("resolved")) != bool(comment.get("resolved")):
            kind, summary = ("comment.reopened", "reopened a comment")
            if comment.get("resolved"):
                kind, summary = ("comment.resolved", "resolved a comment")
            was, now = prior.get("resolved"), comment.get("resolved")
            yield Change(kind, f"{path}/resolved", summary, 0, was, now)
        if prior.get("text") != comment.get("text"):
            was, now = prior.get("text"), comment.get("text")
            yield Change("comment.edited", f"{path}/text", "edited a comment", 0, was, now)
    for key, (_, comment) in old.items():
        if key not in new:
            yield Change("comment.deleted", f"comments/{key}", "deleted a comment", before=comment)


def _marker_name(marker: dict[str, Any]) -> str:
    name = marker.get("name")
    return f"marker {name}" if isinstance(name, str) and name else "a marker"


def _markers(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> Iterator[Change]:
    old = {_marker_key(m, i): m for i, m in enumerate(before)}
    new = {_marker_key(m, i): m for i, m in enumerate(after)}
    for key, marker in new.items():
        path = f"markers/{key}"
        name = _marker_name(marker)
        if key not in old:
            summary = f"added {name} at {_seconds(marker.get('at'))}"
            yield Change("marker.added", path, summary, after=marker)
            continue
        prior = old[key]
        if prior.get("name") != marker.get("name"):
            summary = f"renamed {_marker_name(prior)} to {name}"
            was, now = prior.get("name"), marker.get("name")
            yield Change("marker.renamed", f"{path}/name", summary, 0, was, now)
        if prior.get("at") != marker.get("at"):
            summary = (
                f"moved {name} from {_seconds(prior.get('at'))} to {_seconds(marker.get('at'))}"
            )
            was, now = prior.get("at"), marker.get("at")
            yield Change("marker.moved", f"{path}/at", summary, 0, was, now)
    for key, marker in old.items():
        if key not in new:
            summary = f"deleted {_marker_name(marker)}"
            yield Change("marker.deleted", f"markers/{key}", summary, before=marker)


def _marker_key(marker: dict[str, Any], index: int) -> str:
    key = marker.get("id")
    return key if isinstance(key, str) else str(index)


# -- other events of a project's stream -----------------------------------------------------------


def event_summary(event_type: str, data: dict[str, Any]) -> str:
    """A sentence for an event that is not a document update (`data`: its decoded JSON)."""
    title, who, role = data.get("title"), data.get("user_id"), data.get("role")
    match event_type:
        case events.PROJECT_CREATED:
            return f'created the project "{title}"'
        case events.PROJECT_RENAMED:
            return f'renamed the project to "{title}"'
        case events.PROJECT_DELETED:
            return "deleted the project"
        case events.MEMBER_ADDED:
            return f"added member {who} as {role}"
        case events.MEMBER_ROLE_CHANGED:
            return f"made member {who} {role}"
        case events.MEMBER_REMOVED:
            return f"removed member {who}"
        case events.SESSION_JOINED:
            return f"joined as {role}" if role else "joined"
        case events.SESSION_LEFT:
            seconds = _number(data.get("seconds"))
            return "left" if seconds is None else f"left after {seconds:.0f} s"
        case events.DOC_RESTORED:
            return _restored(data)
    return event_type


def _restored(data: dict[str, Any]) -> str:
    """ "restored version 4", "restored tracks/t1 to version 4"; "(nothing differed)" when the
    content already was that version's and no update was written."""
    version, path = data.get("version"), data.get("path")
    summary = f"restored {path} to version {version}" if path else f"restored version {version}"
    return summary if data.get("update_version") is not None else f"{summary} (nothing differed)"
