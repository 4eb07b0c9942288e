-- The projects read model (projections/projects.py), folded from the `project-{uuid}` streams:
-- rebuildable from the log. Times are epoch milliseconds of the events' recorded_at.
CREATE TABLE projects (
    id          TEXT   PRIMARY KEY,
    title       TEXT   NOT NULL,
    created_by  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL,  -- stream version of the last project/member event applied
    deleted_at  BIGINT
);

CREATE TABLE project_members (
    project_id  TEXT   NOT NULL,
    user_id     TEXT   NOT NULL,
    role        TEXT   NOT NULL,  -- owner, editor or viewer
    added_at    BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id, project_id);
