-- Projection failures (projections/failures.py): the events a projection with the `skip` policy
-- could not apply, written in the same transaction as the checkpoint that moves past them, until
-- `jacameno projections retry NAME` applies them.
CREATE TABLE projection_failures (
    projection TEXT   NOT NULL,
    position   BIGINT NOT NULL,
    stream     TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    type       TEXT   NOT NULL,
    error      TEXT   NOT NULL,
    traceback  TEXT   NOT NULL,
    failed_at  BIGINT NOT NULL,  -- epoch milliseconds, of the latest attempt
    attempts   BIGINT NOT NULL,
    PRIMARY KEY (projection, position)
);

-- A projection that stalls (the `stop` policy) says so where every process can read it: the
-- error and since when (epoch milliseconds), cleared by the next checkpoint it writes.
ALTER TABLE projection_checkpoints ADD COLUMN failing_since BIGINT;
ALTER TABLE projection_checkpoints ADD COLUMN last_error TEXT;
