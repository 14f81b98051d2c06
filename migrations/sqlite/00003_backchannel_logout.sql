-- +goose Up
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE clients DROP COLUMN backchannel_logout_session_required;
ALTER TABLE clients DROP COLUMN backchannel_logout_uri;
