-- Projection checkpoints (projections/runner.py): the last log position each projection applied,
-- advanced in the same transaction as the projection's effects on its read model.
CREATE TABLE projection_checkpoints (
    name       TEXT   PRIMARY KEY,
    position   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL  -- epoch milliseconds
);
