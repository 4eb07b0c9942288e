-- The event log (eventstore/postgres.py).
-- Positions come from es_sequencer, updated in the appending transaction and taken last: the row
-- lock is held until commit, so positions are gapless and in commit order across all writers.
CREATE TABLE es_sequencer (
    id       smallint PRIMARY KEY CHECK (id = 1),
    position bigint   NOT NULL
);
INSERT INTO es_sequencer (id, position) VALUES (1, 0);

CREATE TABLE es_events (
    position        bigint      PRIMARY KEY,
    stream          text        NOT NULL,
    version         bigint      NOT NULL,
    type            text        NOT NULL,
    data            bytea       NOT NULL,
    metadata        jsonb       NOT NULL,
    idempotency_key text,
    recorded_at     timestamptz NOT NULL DEFAULT statement_timestamp(),
    CONSTRAINT es_events_stream_version UNIQUE (stream, version)
);

CREATE UNIQUE INDEX es_events_idempotency
    ON es_events (stream, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE es_snapshots (
    stream      text        NOT NULL,
    version     bigint      NOT NULL,
    state       bytea       NOT NULL,
    metadata    jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT statement_timestamp(),
    PRIMARY KEY (stream, version)
);
