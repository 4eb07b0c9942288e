-- Accounts (jacameno/accounts.py) and refresh-token sessions kept in the database when Redis is
-- not configured (jacameno/auth/sessions.py). Times are epoch milliseconds.
CREATE TABLE users (
    id            TEXT   PRIMARY KEY,
    email         TEXT   NOT NULL UNIQUE,  -- lower-cased
    password_hash TEXT   NOT NULL,         -- argon2id, PHC string
    display_name  TEXT   NOT NULL,
    avatar_url    TEXT,
    preferences   TEXT   NOT NULL,         -- a JSON object
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- One row per refresh-token family (one login). `generation` counts rotations: only the token of
-- the current generation is valid; presenting an older one revokes the family.
CREATE TABLE refresh_sessions (
    id          TEXT     PRIMARY KEY,
    user_id     TEXT     NOT NULL,
    generation  BIGINT   NOT NULL,
    revoked     SMALLINT NOT NULL,
    created_at  BIGINT   NOT NULL,
    expires_at  BIGINT   NOT NULL
);
CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id);
CREATE INDEX refresh_sessions_expiry ON refresh_sessions (expires_at);
