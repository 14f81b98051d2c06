-- +goose Up
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash BYTEA,
    redirect_uris JSONB NOT NULL,
    post_logout_redirect_uris JSONB NOT NULL,
    grant_types JSONB NOT NULL,
    response_types JSONB NOT NULL,
    scopes TEXT NOT NULL,
    audience JSONB NOT NULL,
    public BOOLEAN NOT NULL,
    first_party BOOLEAN NOT NULL,
    allow_plain_pkce BOOLEAN NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_username_idx ON users (username);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key_sealed BYTEA NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    publish_until TIMESTAMPTZ
);
CREATE INDEX signing_keys_algorithm_idx ON signing_keys (algorithm, active);
CREATE INDEX signing_keys_publish_until_idx ON signing_keys (publish_until);

CREATE TABLE consents (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes JSONB NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_idx ON consents (client_id);

CREATE TABLE oauth2_authorize_codes (
    signature TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    session_id TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience JSONB NOT NULL,
    granted_audience JSONB NOT NULL,
    form TEXT NOT NULL,
    session_data JSONB NOT NULL,
    active BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth2_authorize_codes_request_idx ON oauth2_authorize_codes (request_id);
CREATE INDEX oauth2_authorize_codes_session_idx ON oauth2_authorize_codes (session_id);
CREATE INDEX oauth2_authorize_codes_client_idx ON oauth2_authorize_codes (client_id);
CREATE INDEX oauth2_authorize_codes_expires_idx ON oauth2_authorize_codes (expires_at);

CREATE TABLE oauth2_access_tokens (
    signature TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    session_id TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience JSONB NOT NULL,
    granted_audience JSONB NOT NULL,
    form TEXT NOT NULL,
    session_data JSONB NOT NULL,
    active BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth2_access_tokens_request_idx ON oauth2_access_tokens (request_id);
CREATE INDEX oauth2_access_tokens_session_idx ON oauth2_access_tokens (session_id);
CREATE INDEX oauth2_access_tokens_client_idx ON oauth2_access_tokens (client_id);
CREATE INDEX oauth2_access_tokens_expires_idx ON oauth2_access_tokens (expires_at);

CREATE TABLE oauth2_refresh_tokens (
    signature TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    access_signature TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    session_id TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience JSONB NOT NULL,
    granted_audience JSONB NOT NULL,
    form TEXT NOT NULL,
    session_data JSONB NOT NULL,
    active BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth2_refresh_tokens_request_idx ON oauth2_refresh_tokens (request_id);
CREATE INDEX oauth2_refresh_tokens_session_idx ON oauth2_refresh_tokens (session_id);
CREATE INDEX oauth2_refresh_tokens_client_idx ON oauth2_refresh_tokens (client_id);
CREATE INDEX oauth2_refresh_tokens_expires_idx ON oauth2_refresh_tokens (expires_at);

CREATE TABLE oauth2_oidc_sessions (
    signature TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    session_id TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience JSONB NOT NULL,
    granted_audience JSONB NOT NULL,
    form TEXT NOT NULL,
    session_data JSONB NOT NULL,
    active BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth2_oidc_sessions_request_idx ON oauth2_oidc_sessions (request_id);
CREATE INDEX oauth2_oidc_sessions_session_idx ON oauth2_oidc_sessions (session_id);
CREATE INDEX oauth2_oidc_sessions_client_idx ON oauth2_oidc_sessions (client_id);
CREATE INDEX oauth2_oidc_sessions_expires_idx ON oauth2_oidc_sessions (expires_at);

CREATE TABLE oauth2_pkce_sessions (
    signature TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    session_id TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience JSONB NOT NULL,
    granted_audience JSONB NOT NULL,
    form TEXT NOT NULL,
    session_data JSONB NOT NULL,
    active BOOLEAN NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth2_pkce_sessions_request_idx ON oauth2_pkce_sessions (request_id);
CREATE INDEX oauth2_pkce_sessions_session_idx ON oauth2_pkce_sessions (session_id);
CREATE INDEX oauth2_pkce_sessions_client_idx ON oauth2_pkce_sessions (client_id);
CREATE INDEX oauth2_pkce_sessions_expires_idx ON oauth2_pkce_sessions (expires_at);

CREATE TABLE oauth2_client_assertion_jti (
    jti TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth2_client_assertion_jti_expires_idx ON oauth2_client_assertion_jti (expires_at);

-- +goose Down
DROP TABLE oauth2_client_assertion_jti;
DROP TABLE oauth2_pkce_sessions;
DROP TABLE oauth2_oidc_sessions;
DROP TABLE oauth2_refresh_tokens;
DROP TABLE oauth2_access_tokens;
DROP TABLE oauth2_authorize_codes;
DROP TABLE consents;
DROP TABLE signing_keys;
DROP TABLE users;
DROP TABLE clients;
