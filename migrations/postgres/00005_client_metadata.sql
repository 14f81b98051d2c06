-- +goose Up
ALTER TABLE clients ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE clients DROP COLUMN metadata;
