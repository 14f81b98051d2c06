-- +goose Up
ALTER TABLE users ADD COLUMN preferred_username TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN picture TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN zoneinfo TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone_number TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone_number_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX users_email_idx ON users (email);

CREATE TABLE roles (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX roles_name_idx ON roles (name);

CREATE TABLE role_permissions (
    role_id UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE user_roles (
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_idx ON user_roles (role_id);

CREATE TABLE audit_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id UUID NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    request_id TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE UNIQUE INDEX audit_events_id_idx ON audit_events (id);
CREATE INDEX audit_events_occurred_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, seq);
CREATE INDEX audit_events_subject_idx ON audit_events (subject, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);

INSERT INTO roles (id, name, description, created_at, updated_at) VALUES
    ('00000000-0000-4000-8000-000000000001', 'admin', 'Administers users, roles, sessions, clients and the audit log', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('00000000-0000-4000-8000-000000000002', 'user', 'A person who signs in', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
INSERT INTO role_permissions (role_id, permission) VALUES
    ('00000000-0000-4000-8000-000000000001', 'users:read'),
    ('00000000-0000-4000-8000-000000000001', 'users:write'),
    ('00000000-0000-4000-8000-000000000001', 'roles:write'),
    ('00000000-0000-4000-8000-000000000001', 'audit:read'),
    ('00000000-0000-4000-8000-000000000001', 'sessions:admin'),
    ('00000000-0000-4000-8000-000000000001', 'clients:write');

-- +goose Down
DROP TABLE audit_events;
DROP TABLE user_roles;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP INDEX users_email_idx;
ALTER TABLE users DROP COLUMN disabled;
ALTER TABLE users DROP COLUMN phone_number_verified;
ALTER TABLE users DROP COLUMN phone_number;
ALTER TABLE users DROP COLUMN zoneinfo;
ALTER TABLE users DROP COLUMN locale;
ALTER TABLE users DROP COLUMN picture;
ALTER TABLE users DROP COLUMN preferred_username;
