-- The event log (eventstore/sqlite.py). Positions are the rowid: gapless, taken by the one writer.
CREATE TABLE es_events (
    position        INTEGER PRIMARY KEY,
    stream          TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    data            BLOB    NOT NULL,
    metadata        TEXT    NOT NULL,
    idempotency_key TEXT,
    recorded_at     INTEGER NOT NULL,  -- microseconds since the Unix epoch, UTC
    UNIQUE (stream, version)
);

CREATE UNIQUE INDEX es_events_idempotency
    ON es_events (stream, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE es_snapshots (
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    state       BLOB    NOT NULL,
    metadata    TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (stream, version)
) WITHOUT ROWID;
