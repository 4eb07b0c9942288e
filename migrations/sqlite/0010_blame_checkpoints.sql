-- Blame's checkpoints (projections/blame_checkpoints.py): a blame replay's document and authors
-- at a version, so that a later blame starts from the nearest one instead of from version 0.
-- Derived from the log and rebuilt by any blame: deleting rows loses time, never history. Here,
-- beside the runner's tables, not in the read models' schema: a checkpoint holds the whole
-- document (the lyrics' text), which the tables granted to analysts leave out.
CREATE TABLE blame_checkpoints (
    stream    TEXT   NOT NULL,
    version   BIGINT NOT NULL,
    format    BIGINT NOT NULL,  -- of data; a reader passes over a format it does not know
    size      BIGINT NOT NULL,  -- bytes of data
    data      BLOB   NOT NULL,
    saved_at  BIGINT NOT NULL,  -- epoch milliseconds
    PRIMARY KEY (stream, version)
);
