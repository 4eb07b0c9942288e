-- Read models in their own schema, so that an analyst's role can be granted exactly them
-- (`jacameno analyst grant ROLE`); the server's SQL pool finds them through its search_path.
-- From now on the projection runner creates a read model's tables (projections/tables.py) and
-- rebuilds them beside the live ones; the checkpoint row records the shape (`schema_version`)
-- the live tables were built with, and a projection whose version in code differs is rebuilt.
CREATE SCHEMA IF NOT EXISTS readmodels;
ALTER TABLE projects SET SCHEMA readmodels;
ALTER TABLE project_members SET SCHEMA readmodels;
ALTER TABLE doc_projects SET SCHEMA readmodels;
ALTER TABLE doc_tracks SET SCHEMA readmodels;
ALTER TABLE doc_clips SET SCHEMA readmodels;
ALTER TABLE doc_comments SET SCHEMA readmodels;
ALTER TABLE doc_markers SET SCHEMA readmodels;
ALTER TABLE projection_checkpoints ADD COLUMN schema_version BIGINT NOT NULL DEFAULT 1;
