"""JSON Schemas of request and response bodies: the handlers validate with them and the OpenAPI
document is built from them, so the two cannot disagree."""

from __future__ import annotations

from typing import Any

from domain.roles import ROLES

Schema = dict[str, Any]

# No NUL and no other C0 control character except tab, newline and carriage return.
_PRINTABLE = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"


def text(min_length: int, max_length: int, **extra: Any) -> Schema:
    return {
        "type": "string",
        "minLength": min_length,
        "maxLength": max_length,
        "pattern": _PRINTABLE,
        **extra,
    }


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


EMAIL: Schema = {
    "type": "string",
    "format": "email",
    "minLength": 3,
    "maxLength": 254,
    "pattern": _PRINTABLE,
}
PASSWORD = text(8, 256)
DISPLAY_NAME = text(1, 100)
TITLE = text(1, 200)
AVATAR_URL: Schema = {
    "type": "string",
    "maxLength": 2048,
    "pattern": "^https?://[^\\s\\u0000-\\u001F\\u007F]+$",
}
# Preferences are flat settings (theme, metronome, ...): names and text without control characters.
PREFERENCES: Schema = {
    "type": "object",
    "maxProperties": 100,
    "propertyNames": {"minLength": 1, "maxLength": 100, "pattern": _PRINTABLE},
    "additionalProperties": {
        "anyOf": [
            text(0, 2000),
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
        ]
    },
}
PREFERENCES_MAX_BYTES = 16 * 1024
ROLE: Schema = {"type": "string", "enum": list(ROLES)}
UUID: Schema = {"type": "string", "format": "uuid"}
MILLIS: Schema = {"type": "integer", "description": "epoch milliseconds"}
REFRESH_TOKEN = text(1, 512)

ERROR = obj(
    {
        "error": obj(
            {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
            ("code", "message", "details"),
        )
    },
    ("error",),
)

# -- accounts and auth --------------------------------------------------------------------

REGISTER = obj(
    {"email": EMAIL, "password": PASSWORD, "display_name": DISPLAY_NAME},
    ("email", "password", "display_name"),
)
LOGIN = obj({"email": EMAIL, "password": text(1, 256)}, ("email", "password"))
REFRESH = obj({"refresh_token": REFRESH_TOKEN}, ("refresh_token",))
USER = obj(
    {
        "id": UUID,
        "email": {"type": "string"},
        "display_name": {"type": "string"},
        "avatar_url": nullable({"type": "string"}),
        "preferences": {"type": "object"},
        "created_at": MILLIS,
    },
    ("id", "email", "display_name", "avatar_url", "preferences", "created_at"),
)
REGISTERED = obj({"user": USER}, ("user",))
TOKENS = obj(
    {
        "access_token": {"type": "string"},
        "refresh_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["bearer"]},
        "expires_in": {"type": "integer", "description": "seconds the access token is valid"},
    },
    ("access_token", "refresh_token", "token_type", "expires_in"),
)
UPDATE_ME = obj(
    {"display_name": DISPLAY_NAME, "avatar_url": nullable(AVATAR_URL), "preferences": PREFERENCES},
    minProperties=1,
)

# -- projects and members ------------------------------------------------------------------

NEW_PROJECT = obj({"title": TITLE}, ("title",))
UPDATE_PROJECT = obj({"title": TITLE}, ("title",))
PROJECT = obj(
    {
        "id": UUID,
        "title": {"type": "string"},
        "role": ROLE,
        "created_by": {"type": "string"},
        "created_at": MILLIS,
        "updated_at": MILLIS,
        "version": {"type": "integer", "description": "version of the project's stream"},
    },
    ("id", "title", "role", "created_by", "created_at", "updated_at", "version"),
)
PROJECT_PAGE = obj(
    {"projects": {"type": "array", "items": PROJECT}, "next_cursor": nullable({"type": "string"})},
    ("projects", "next_cursor"),
)
NEW_MEMBER = obj({"email": EMAIL, "role": ROLE}, ("email", "role"))
UPDATE_MEMBER = obj({"role": ROLE}, ("role",))
MEMBER = obj(
    {
        "user_id": UUID,
        "email": nullable({"type": "string"}),
        "display_name": nullable({"type": "string"}),
        "role": ROLE,
        "added_at": MILLIS,
    },
    ("user_id", "email", "display_name", "role", "added_at"),
)
RESTORE = obj(
    {
        "version": {
            "type": "integer",
            "description": "the version of the project's stream to restore (0: the empty document)",
        },
        "path": nullable(
            text(
                1,
                300,
                description="only this part: meta, tracks, lyrics, comments, markers, or one "
                "item of tracks, comments or markers as tracks/<id>; absent or null: the whole "
                "document",
            )
        ),
    },
    ("version",),
)
RESTORED = obj(
    {
        "version": {"type": "integer", "description": "the version restored"},
        "path": nullable({"type": "string", "description": "the part restored; null: all"}),
        "changed": {
            "type": "boolean",
            "description": "false: the content already was that version's; no update was logged",
        },
        "update_version": nullable(
            {"type": "integer", "description": "the version the restore's doc.updated took"}
        ),
        "event_version": {
            "type": "integer",
            "description": "the version of the doc.restored event that names this restore",
        },
    },
    ("version", "path", "changed", "update_version", "event_version"),
)
MEMBERS = obj({"members": {"type": "array", "items": MEMBER}}, ("members",))
APPLIED_UPDATE = obj(
    {
        "version": nullable(
            {"type": "integer", "description": "the version of the project's stream it took"}
        ),
        "changed": {
            "type": "boolean",
            "description": "false: the document already had all of it; nothing was logged",
        },
    },
    ("version", "changed"),
)

_NUMBER = nullable({"type": "number"})
_TEXT = nullable({"type": "string"})
CLIP = obj(
    {
        "id": {"type": "string"},
        "asset_id": _TEXT,
        "start": _NUMBER,
        "length": _NUMBER,
        "offset": _NUMBER,
        "gain_db": _NUMBER,
    },
    ("id", "asset_id", "start", "length", "offset", "gain_db"),
)
TRACK = obj(
    {
        "id": {"type": "string"},
        "position": {"type": "integer", "description": "index in the document's tracks"},
        "name": _TEXT,
        "kind": nullable({"type": "string", "enum": ["audio", "midi", "bus"]}),
        "color": _TEXT,
        "volume_db": _NUMBER,
        "pan": _NUMBER,
        "muted": nullable({"type": "boolean"}),
        "solo": nullable({"type": "boolean"}),
        "clips": {"type": "array", "items": CLIP},
    },
    ("id", "position", "name", "kind", "color", "volume_db", "pan", "muted", "solo", "clips"),
)
TRACKS = obj(
    {
        "version": {
            "type": "integer",
            "description": "the stream version the read model shows (0: no edit folded yet)",
        },
        "tracks": {"type": "array", "items": TRACK},
    },
    ("version", "tracks"),
)

PROJECTION_STATUS = obj(
    {
        "name": {"type": "string", "description": "the projection, or `<name>__rebuild`"},
        "state": {
            "type": "string",
            "enum": ["following", "standby", "rebuilding", "stopped", "failing"],
        },
        "position": {"type": "integer"},
        "head": {"type": "integer"},
        "lag_positions": {"type": "integer"},
        "seconds_behind": {"type": "number"},
        "events_per_second": nullable({"type": "number"}),
        "failures": {"type": "integer"},
        "last_error": _TEXT,
        "failing_since": nullable({"type": "string", "format": "date-time"}),
    },
    ("name", "state", "position", "head", "lag_positions", "seconds_behind", "failures"),
)
PROJECTION_STATUSES = obj(
    {"projections": {"type": "array", "items": PROJECTION_STATUS}}, ("projections",)
)
REBUILD_STARTED = obj(
    {"projection": {"type": "string"}, "state": {"type": "string", "enum": ["rebuilding"]}},
    ("projection", "state"),
)

_COUNT: Schema = {"type": "integer", "minimum": 0}
_ACTIVITY: dict[str, Schema] = {
    "edits": {"type": "integer", "minimum": 0, "description": "doc.updated events"},
    "bytes": {"type": "integer", "minimum": 0, "description": "their Yjs update bytes"},
    "sessions": {"type": "integer", "minimum": 0, "description": "sessions joined"},
}


def _analytics(who: str, others: str, share: Schema) -> Schema:
    """An analytics answer: its window, totals, buckets, and shares (of collaborators or
    projects); `others` counts the distinct ones."""
    totals: dict[str, Schema] = {
        **_ACTIVITY,
        others: _COUNT,
        "session_seconds": {
            "type": "number",
            "description": "summed length of the sessions joined in the window that ended",
        },
        "open_sessions": _COUNT,
    }
    bucket = obj({"at": MILLIS, **_ACTIVITY, others: _COUNT}, ("at", *_ACTIVITY, others))
    return obj(
        {
            who: UUID,
            "granularity": {"type": "string", "enum": ["hour", "day"]},
            "from": {**MILLIS, "description": "start of the first bucket (epoch ms, included)"},
            "to": {**MILLIS, "description": "end of the last bucket (epoch ms, excluded)"},
            "totals": obj(totals, tuple(totals)),
            "series": {"type": "array", "items": bucket},
            others: {"type": "array", "items": share},
        },
        (who, "granularity", "from", "to", "totals", "series", others),
    )


PROJECT_ANALYTICS = _analytics(
    "project_id",
    "collaborators",
    obj({"user_id": {"type": "string"}, **_ACTIVITY}, ("user_id", *_ACTIVITY)),
)
MY_ANALYTICS = _analytics(
    "user_id",
    "projects",
    obj(
        {"project_id": {"type": "string"}, "title": _TEXT, **_ACTIVITY},
        ("project_id", "title", *_ACTIVITY),
    ),
)


# -- time travel (docs/history.md) ----------------------------------------------------------

_TIME = {"type": "string", "format": "date-time"}
_OPTIONAL_TEXT = nullable({"type": "string"})
PROJECT_STATE = obj(
    {
        "project_id": {"type": "string"},
        "version": {"type": "integer", "description": "the stream version it stands at (0: empty)"},
        "recorded_at": nullable({**_TIME, "description": "when that version's event was logged"}),
        "document": {
            "type": "object",
            "description": "every root as JSON: meta, tracks, lyrics, comments, markers, others",
        },
    },
    ("project_id", "version", "recorded_at", "document"),
)
_CHANGE = obj(
    {"kind": {"type": "string"}, "path": {"type": "string"}, "summary": {"type": "string"}},
    ("kind", "path", "summary"),
)
HISTORY_ENTRY = obj(
    {
        "version": {"type": "integer"},
        "last_version": {
            "type": "integer",
            "description": "the last version of a group of keystrokes (else = version)",
        },
        "events": {"type": "integer", "description": "events in this entry (grouped: several)"},
        "position": {"type": "integer"},
        "type": {"type": "string", "description": "doc.updated, member.added, session.joined..."},
        "recorded_at": _TIME,
        "user_id": _OPTIONAL_TEXT,
        "connection_id": _OPTIONAL_TEXT,
        "node": _OPTIONAL_TEXT,
        "summary": {"type": "array", "items": {"type": "string"}},
        "changes": {"type": "array", "items": _CHANGE},
    },
    (
        "version",
        "last_version",
        "events",
        "position",
        "type",
        "recorded_at",
        "user_id",
        "connection_id",
        "node",
        "summary",
        "changes",
    ),
)
HISTORY_PAGE = obj(
    {
        "entries": {"type": "array", "items": HISTORY_ENTRY},
        "next_after": nullable(
            {"type": "integer", "description": "pass as `after` for the next page; null: the end"}
        ),
    },
    ("entries", "next_after"),
)

_POINT = obj(
    {"version": {"type": "integer"}, "recorded_at": nullable(_TIME)}, ("version", "recorded_at")
)
_DIFF_CHANGE = obj(
    {
        "kind": {"type": "string"},
        "path": {"type": "string"},
        "summary": {"type": "string"},
        "before": {"description": "the plain value at path in `from` (null: none)"},
        "after": {"description": "the plain value at path in `to` (null: none)"},
    },
    ("kind", "path", "summary", "before", "after"),
)
_RUN = obj(
    {
        "op": {"type": "string", "enum": ["equal", "insert", "delete"]},
        "text": {"type": "string"},
    },
    ("op", "text"),
)
PROJECT_DIFF = obj(
    {
        "project_id": {"type": "string"},
        "from": _POINT,
        "to": _POINT,
        "changes": {"type": "array", "items": _DIFF_CHANGE},
        "lyrics": {
            "type": "array",
            "items": _RUN,
            "description": "equal + delete runs spell the lyrics at `from`, equal + insert at `to`",
        },
    },
    ("project_id", "from", "to", "changes", "lyrics"),
)

_BLAME_RUN = obj(
    {
        "text": {"type": "string"},
        "user_id": nullable({"type": "string", "description": "null: the log does not say"}),
        "version": {"type": "integer", "description": "the version whose update wrote it"},
    },
    ("text", "user_id", "version"),
)
_SETTING = obj(
    {
        "value": {"description": "the value the track holds at this version"},
        "user_id": _OPTIONAL_TEXT,
        "version": nullable({"type": "integer"}),
        "recorded_at": nullable(_TIME),
    },
    ("value", "user_id", "version", "recorded_at"),
)
BLAME_PREPARING = obj(
    {
        "project_id": {"type": "string"},
        "status": {"type": "string", "enum": ["preparing"]},
        "version": {
            "type": "integer",
            "description": "the version the replay under way reaches, then stores checkpoints",
        },
        "retry_after": {"type": "integer", "description": "seconds, as Retry-After says"},
    },
    ("project_id", "status", "version", "retry_after"),
)
PROJECT_BLAME = obj(
    {
        "project_id": {"type": "string"},
        "version": {"type": "integer"},
        "recorded_at": nullable(_TIME),
        "path": {"type": "string"},
        "runs": {
            "type": "array",
            "items": _BLAME_RUN,
            "description": "path lyrics: runs that spell the lyrics, each character in one",
        },
        "track_id": {"type": "string"},
        "values": {
            "type": "object",
            "additionalProperties": _SETTING,
            "description": "path tracks/<id>: volume_db, pan, muted, solo, name as the track "
            "holds them, each with who set it last",
        },
    },
    ("project_id", "version", "recorded_at", "path"),
)

# -- operations ----------------------------------------------------------------------------

HEALTH = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}

_COUNT = {"type": "integer", "minimum": 0}
ASSET = obj(
    {
        "id": {"type": "string", "format": "uuid"},
        "project_id": {"type": "string", "format": "uuid"},
        "user_id": {"type": "string", "description": "who uploaded it"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "also its ETag"},
        "size": {**_COUNT, "description": "bytes"},
        "content_type": {"type": "string", "description": "what GET /api/assets/{id} serves"},
        "format": {"type": "string", "description": "container: WAV, FLAC, OGG, MP3, AIFF, ..."},
        "sample_rate": _COUNT,
        "channels": _COUNT,
        "frames": _COUNT,
        "duration": {"type": "number", "minimum": 0, "description": "seconds"},
        "name": {"type": "string"},
        "created_at": {**_COUNT, "description": "ms since the epoch"},
    },
    (
        "id",
        "project_id",
        "user_id",
        "sha256",
        "size",
        "content_type",
        "format",
        "sample_rate",
        "channels",
        "frames",
        "duration",
        "name",
        "created_at",
    ),
)
ASSETS = obj({"assets": {"type": "array", "items": ASSET}}, ("assets",))
AUDIO: Schema = {"type": "string", "format": "binary"}
# Waveform peaks at several resolutions, each as audiowaveform's JSON format writes them.
WAVEFORMS: Schema = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "version": {"type": "integer"},
            "channels": {"type": "integer"},
            "sample_rate": {"type": "integer"},
            "samples_per_pixel": {"type": "integer"},
            "bits": {"type": "integer"},
            "length": {"type": "integer"},
            "data": {"type": "array", "items": {"type": "number"}},
        },
    },
}

# -- AI jobs (jacameno/api/jobs.py) -------------------------------------------------------------

_ID = text(1, 200)
# What each parameter may be (jacameno.jobs.params); which go together is the handler's to say.
JOB_PARAMS = obj(
    {
        "preset": {
            "type": "string",
            "enum": ["streaming", "apple", "ebu_r128", "custom", "reference"],
        },
        "target_lufs": {"type": "number", "minimum": -40, "maximum": -5},
        "ceiling_dbtp": {"type": "number", "minimum": -12, "maximum": 0},
        "tilt_db_per_octave": {"type": "number", "minimum": -1.5, "maximum": 1.5},
        "reference_asset_id": _ID,
    }
)
NEW_JOB = obj(
    {
        "kind": {"type": "string", "enum": ["analysis", "mastering"]},
        "asset_id": _ID,
        "params": JOB_PARAMS,
    },
    ("kind", "asset_id"),
)
_MILLIS = nullable({"type": "integer"})
JOB = obj(
    {
        "id": {"type": "string"},
        "project_id": {"type": "string"},
        "kind": {"type": "string", "enum": ["analysis", "mastering"]},
        "asset_id": {"type": "string"},
        "params": {"type": "object"},
        "state": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
        "requested_by": {"type": "string"},
        "requested_at": {"type": "integer"},
        "attempts": {"type": "integer"},
        "progress": _NUMBER,
        "error": _TEXT,
        "result": {},
        "output_asset_id": _TEXT,
        "started_at": _MILLIS,
        "finished_at": _MILLIS,
    },
    ("id", "project_id", "kind", "asset_id", "params", "state", "attempts"),
)
JOBS = obj({"jobs": {"type": "array", "items": JOB}}, ("jobs",))
# One Server-Sent Event's data: the logged event.
FEED_EVENT = obj(
    {
        "position": {"type": "integer"},
        "version": {"type": "integer"},
        "type": {"type": "string"},
        "recorded_at": _TIME,
        "user_id": _TEXT,
        "data": {},
    },
    ("position", "version", "type", "recorded_at", "data"),
)
