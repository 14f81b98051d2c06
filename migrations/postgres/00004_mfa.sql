-- +goose Up
CREATE TABLE user_mfa (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    totp_secret BYTEA NOT NULL,
    confirmed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    last_step BIGINT NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    -- failed_codes counts code checks since the last success or lock; a
    -- check is counted before it runs, so parallel requests cannot exceed
    -- the limit.
    failed_codes INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE backup_codes (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX backup_codes_user_idx ON backup_codes (user_id);

CREATE TABLE mfa_challenges (
    id TEXT PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    failures INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX mfa_challenges_user_idx ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_idx ON mfa_challenges (expires_at);

-- +goose Down
DROP TABLE mfa_challenges;
DROP TABLE backup_codes;
DROP TABLE user_mfa;
