-- +goose Up
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    response_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    public INTEGER NOT NULL,
    first_party INTEGER NOT NULL,
    allow_plain_pkce INTEGER NOT NULL,
    token_endpoint_auth_method TEXT NOT NULL,
    id_token_signed_response_alg TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    email_verified INTEGER NOT NULL,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX users_username_idx ON users (username);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    active INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    publish_until TIMESTAMP
);
CREATE INDEX signing_keys_algorithm_idx ON signing_keys (algorithm, active);
CREATE INDEX signing_keys_publish_until_idx ON signing_keys (publish_until);

CREATE TABLE consents (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_idx ON consents (client_id);

CREATE TABLE oauth2_authorize_codes (
    signature TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    session_id TEXT NOT NULL,
    requested_at TIMESTAMP NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    granted_audience TEXT NOT NULL,
    form TEXT NOT NULL,
    session_data TEXT NOT NULL,
    active INTEGER NOT NULL,
    expires_at TIMESTAMP NOT NULL
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
    requested_at TIMESTAMP NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    granted_audience TEXT NOT NULL,
    form TEXT NOT NULL,
    session_data TEXT NOT NULL,
    active INTEGER NOT NULL,
    expires_at TIMESTAMP NOT NULL
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
    requested_at TIMESTAMP NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    granted_audience TEXT NOT NULL,
    form TEXT NOT NULL,
    session_data TEXT NOT NULL,
    active INTEGER NOT NULL,
    expires_at TIMESTAMP NOT NULL
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
    requested_at TIMESTAMP NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    granted_audience TEXT NOT NULL,
    form TEXT NOT NULL,
    session_data TEXT NOT NULL,
    active INTEGER NOT NULL,
    expires_at TIMESTAMP NOT NULL
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
    requested_at TIMESTAMP NOT NULL,
    scopes TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    granted_audience TEXT NOT NULL,
    form TEXT NOT NULL,
    session_data TEXT NOT NULL,
    active INTEGER NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX oauth2_pkce_sessions_request_idx ON oauth2_pkce_sessions (request_id);
CREATE INDEX oauth2_pkce_sessions_session_idx ON oauth2_pkce_sessions (session_id);
CREATE INDEX oauth2_pkce_sessions_client_idx ON oauth2_pkce_sessions (client_id);
CREATE INDEX oauth2_pkce_sessions_expires_idx ON oauth2_pkce_sessions (expires_at);

CREATE TABLE oauth2_client_assertion_jti (
    jti TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
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
