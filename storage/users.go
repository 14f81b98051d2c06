package storage

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// User is a person who can log in.
type User struct {
	ID            string
	Username      string // stored lower-case and unique
	Email         string
	EmailVerified bool
	PasswordHash  string // argon2id in PHC string format
	Name          string
	GivenName     string
	FamilyName    string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// LogValue logs a user by id only, so the password hash never reaches a log.
func (u User) LogValue() slog.Value { return slog.StringValue(u.ID) }

type userRow struct {
	ID            string `gorm:"primaryKey"`
	Username      string
	Email         string
	EmailVerified bool
	PasswordHash  string
	Name          string
	GivenName     string
	FamilyName    string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (userRow) TableName() string { return "users" }

// NormalizeUsername returns the form in which usernames are stored and
// compared: trimmed and lower-case.
func NormalizeUsername(username string) string {
	return strings.ToLower(strings.TrimSpace(username))
}

// CreateUser inserts a user. A taken username returns ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	now := time.Now().UTC().Truncate(time.Second)
	u.Username = NormalizeUsername(u.Username)
	u.CreatedAt, u.UpdatedAt = now, now
	row := userRow(*u)
	return translate(s.db(ctx).Create(&row).Error)
}

// GetUser loads a user by id. An unknown id returns fosite.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	var row userRow
	if err := s.db(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	u := User(row)
	return &u, nil
}

// GetUserByUsername loads a user by username, compared case-insensitively.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (*User, error) {
	var row userRow
	err := s.db(ctx).Where("username = ?", NormalizeUsername(username)).Take(&row).Error
	if err != nil {
		return nil, translate(err)
	}
	u := User(row)
	return &u, nil
}

// SetPasswordHash replaces a user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	result := s.db(ctx).Model(&userRow{}).Where("id = ?", userID).
		Updates(map[string]any{"password_hash": hash, "updated_at": time.Now().UTC()})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}
