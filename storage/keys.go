package storage

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// SigningKey is one signing key pair. The private half is sealed (encrypted)
// by the caller before it reaches storage.
type SigningKey struct {
	KID              string
	Algorithm        string // RS256 or ES256
	PublicJWK        []byte // JSON Web Key of the public half
	PrivateKeySealed []byte
	// Active keys sign new tokens. One per algorithm.
	Active    bool
	CreatedAt time.Time
	// PublishUntil is when a retired key leaves the JWKS, once every token
	// it signed has expired. Nil while the key is active.
	PublishUntil *time.Time
}

type signingKeyRow struct {
	KID              string `gorm:"primaryKey;column:kid"`
	Algorithm        string
	PublicJWK        string `gorm:"column:public_jwk"`
	PrivateKeySealed []byte
	Active           bool
	CreatedAt        time.Time
	PublishUntil     *time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

func (r *signingKeyRow) toKey() *SigningKey {
	return &SigningKey{
		KID:              r.KID,
		Algorithm:        r.Algorithm,
		PublicJWK:        []byte(r.PublicJWK),
		PrivateKeySealed: r.PrivateKeySealed,
		Active:           r.Active,
		CreatedAt:        r.CreatedAt,
		PublishUntil:     r.PublishUntil,
	}
}

// PublishedSigningKeys returns the active keys and the retired keys whose
// publication window has not ended, newest first.
func (s *Store) PublishedSigningKeys(ctx context.Context, now time.Time) ([]*SigningKey, error) {
	var rows []signingKeyRow
	err := s.db(ctx).Where("active = ? OR publish_until > ?", true, now.UTC()).
		Order("created_at DESC, kid").Find(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	keys := make([]*SigningKey, 0, len(rows))
	for i := range rows {
		keys = append(keys, rows[i].toKey())
	}
	return keys, nil
}

// AddSigningKey inserts key as the active key of its algorithm and retires
// the previously active one, which stays published until retireUntil. Both
// happen in one transaction.
func (s *Store) AddSigningKey(ctx context.Context, key *SigningKey, retireUntil time.Time) error {
	ctx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	tx := s.db(ctx)

	err = tx.Model(&signingKeyRow{}).
		Where("algorithm = ? AND active = ?", key.Algorithm, true).
		Updates(map[string]any{"active": false, "publish_until": retireUntil.UTC()}).Error
	if err != nil {
		_ = s.Rollback(ctx)
		return translate(err)
	}

	row := signingKeyRow{
		KID:              key.KID,
		Algorithm:        key.Algorithm,
		PublicJWK:        string(key.PublicJWK),
		PrivateKeySealed: key.PrivateKeySealed,
		Active:           true,
		CreatedAt:        key.CreatedAt.UTC(),
	}
	if err := tx.Create(&row).Error; err != nil {
		_ = s.Rollback(ctx)
		return translate(err)
	}
	return s.Commit(ctx)
}

// Consent is a user's standing approval of scopes for a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

type consentRow struct {
	UserID    string `gorm:"primaryKey"`
	ClientID  string `gorm:"primaryKey"`
	Scopes    string
	GrantedAt time.Time
}

func (consentRow) TableName() string { return "consents" }

// GetConsent returns the consent a user gave a client, or
// fosite.ErrNotFound.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (*Consent, error) {
	var row consentRow
	err := s.db(ctx).Where("user_id = ? AND client_id = ?", userID, clientID).Take(&row).Error
	if err != nil {
		return nil, translate(err)
	}
	return &Consent{UserID: row.UserID, ClientID: row.ClientID, Scopes: decodeList(row.Scopes), GrantedAt: row.GrantedAt}, nil
}

// SaveConsent records or replaces a user's consent for a client in one
// statement, so that concurrent saves cannot collide.
func (s *Store) SaveConsent(ctx context.Context, c *Consent) error {
	row := consentRow{UserID: c.UserID, ClientID: c.ClientID, Scopes: encodeList(c.Scopes), GrantedAt: c.GrantedAt.UTC()}
	return translate(s.db(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "user_id"}, {Name: "client_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"scopes", "granted_at"}),
	}).Create(&row).Error)
}
