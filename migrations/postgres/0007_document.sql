-- The document read model (projections/document.py): each project's Yjs document (DESIGN.md,
-- "Project document") as rows, folded from the `doc.updated` events and rebuildable from the log.
-- What does not fit the schema is left out and counted in doc_projects.schema_problems. Booleans
-- are 0/1; numbers that the document holds as floats stay floats; `key` and `offset` are SQL
-- keywords and need double quotes in queries.
CREATE TABLE doc_projects (
    project_id        TEXT   PRIMARY KEY,
    title             TEXT,
    bpm               DOUBLE PRECISION,
    "key"             TEXT,
    time_signature    TEXT,
    lyrics_characters BIGINT NOT NULL,
    lyrics_words      BIGINT NOT NULL,
    lyrics_lines      BIGINT NOT NULL,
    comments          BIGINT NOT NULL,  -- comments in the document, resolved or not
    schema_problems   BIGINT NOT NULL,  -- values left out because they do not fit the schema
    version           BIGINT NOT NULL,  -- stream version of the last doc.updated applied
    updated_at        BIGINT NOT NULL   -- its recorded_at, epoch milliseconds
);

CREATE TABLE doc_tracks (
    project_id  TEXT     NOT NULL,
    id          TEXT     NOT NULL,
    position    BIGINT   NOT NULL,  -- 0-based index in the document's tracks array
    name        TEXT,
    kind        TEXT,               -- audio, midi or bus
    color       TEXT,
    volume_db   DOUBLE PRECISION,
    pan         DOUBLE PRECISION,
    muted       SMALLINT,
    solo        SMALLINT,
    PRIMARY KEY (project_id, id)
);

CREATE TABLE doc_clips (
    project_id  TEXT     NOT NULL,
    track_id    TEXT     NOT NULL,
    id          TEXT     NOT NULL,
    asset_id    TEXT,
    start       DOUBLE PRECISION,
    length      DOUBLE PRECISION,
    "offset"    DOUBLE PRECISION,
    gain_db     DOUBLE PRECISION,
    PRIMARY KEY (project_id, track_id, id)
);

CREATE TABLE doc_comments (
    project_id  TEXT     NOT NULL,
    id          TEXT     NOT NULL,
    position    BIGINT   NOT NULL,
    author      TEXT,
    text        TEXT,
    at          DOUBLE PRECISION,                 -- where in the song, seconds
    created_at  DOUBLE PRECISION,                 -- as the client wrote it
    resolved    SMALLINT,
    PRIMARY KEY (project_id, id)
);

CREATE TABLE doc_markers (
    project_id  TEXT     NOT NULL,
    position    BIGINT   NOT NULL,
    id          TEXT,
    name        TEXT,
    at          DOUBLE PRECISION,
    PRIMARY KEY (project_id, position)
);
