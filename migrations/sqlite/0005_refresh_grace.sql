-- When each refresh session last moved to a new generation (epoch milliseconds), so that the
-- token rotated away last can be honoured for a short grace (two tabs refreshing at once).
-- Existing sessions get 0: no grace for a rotation made before this migration.
ALTER TABLE refresh_sessions ADD COLUMN rotated_at BIGINT NOT NULL DEFAULT 0;
