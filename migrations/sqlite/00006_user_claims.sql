-- +goose Up
-- The standard claims of OpenID Connect Core 1.0 §5.1 that users lacked.
-- Empty means the user has not set the claim.
ALTER TABLE users ADD COLUMN middle_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN nickname TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN website TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN gender TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN birthdate TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address_formatted TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address_street_address TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address_locality TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address_region TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address_postal_code TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN address_country TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE users DROP COLUMN address_country;
ALTER TABLE users DROP COLUMN address_postal_code;
ALTER TABLE users DROP COLUMN address_region;
ALTER TABLE users DROP COLUMN address_locality;
ALTER TABLE users DROP COLUMN address_street_address;
ALTER TABLE users DROP COLUMN address_formatted;
ALTER TABLE users DROP COLUMN birthdate;
ALTER TABLE users DROP COLUMN gender;
ALTER TABLE users DROP COLUMN website;
ALTER TABLE users DROP COLUMN profile;
ALTER TABLE users DROP COLUMN nickname;
ALTER TABLE users DROP COLUMN middle_name;
