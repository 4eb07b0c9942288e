-- From now on the projection runner creates a read model's tables (projections/tables.py) and
-- rebuilds them beside the live ones; the checkpoint row records the shape (`schema_version`)
-- the live tables were built with, and a projection whose version in code differs is rebuilt.
ALTER TABLE projection_checkpoints ADD COLUMN schema_version BIGINT NOT NULL DEFAULT 1;
