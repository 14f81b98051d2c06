-- +goose Up
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
