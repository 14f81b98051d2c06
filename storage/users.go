package storage

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/ory/fosite"
	"gorm.io/gorm/clause"
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
	// PreferredUsername is the name the person wants shown; empty means
	// Username.
	PreferredUsername   string
	Picture             string
	Locale              string
	Zoneinfo            string
	PhoneNumber         string
	PhoneNumberVerified bool
	MiddleName          string
	Nickname            string
	// Profile is the URL of the person's profile page.
	Profile string
	Website string
	Gender  string
	// Birthdate is YYYY-MM-DD, 0000-MM-DD when the year is withheld, or
	// YYYY alone (see CheckBirthdate).
	Birthdate string
	Address   Address
	// Disabled users cannot sign in.
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// LogValue logs a user by id only, so the password hash never reaches a log.
func (u User) LogValue() slog.Value { return slog.StringValue(u.ID) }

type userRow struct {
	ID                  string `gorm:"primaryKey"`
	Username            string
	Email               string
	EmailVerified       bool
	PasswordHash        string
	Name                string
	GivenName           string
	FamilyName          string
	PreferredUsername   string
	Picture             string
	Locale              string
	Zoneinfo            string
	PhoneNumber         string
	PhoneNumberVerified bool
	MiddleName          string
	Nickname            string
	Profile             string
	Website             string
	Gender              string
	Birthdate           string
	Address             Address `gorm:"embedded;embeddedPrefix:address_"`
	Disabled            bool
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

func (userRow) TableName() string { return "users" }

// usernamePattern keeps usernames to ASCII, so that no two of them look
// alike (a Cyrillic "е" for a Latin "e", an invisible space).
var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// ValidUsername reports whether a normalized username is 1 to 64 of a-z,
// 0-9 and . _ @ -, starting with a letter or digit.
func ValidUsername(username string) bool {
	return usernamePattern.MatchString(username)
}

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

// UpdateUser writes every profile field of u. The password hash, the
// disabled flag and the creation time have their own methods, so that an
// edit made from a stale copy cannot undo them. A taken username returns ErrConflict, an unknown id
// fosite.ErrNotFound.
func (s *Store) UpdateUser(ctx context.Context, u *User) error {
	u.Username = NormalizeUsername(u.Username)
	u.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	result := s.db(ctx).Model(&userRow{}).Where("id = ?", u.ID).Updates(map[string]any{
		"username":               u.Username,
		"email":                  u.Email,
		"email_verified":         u.EmailVerified,
		"name":                   u.Name,
		"given_name":             u.GivenName,
		"family_name":            u.FamilyName,
		"preferred_username":     u.PreferredUsername,
		"picture":                u.Picture,
		"locale":                 u.Locale,
		"zoneinfo":               u.Zoneinfo,
		"phone_number":           u.PhoneNumber,
		"phone_number_verified":  u.PhoneNumberVerified,
		"middle_name":            u.MiddleName,
		"nickname":               u.Nickname,
		"profile":                u.Profile,
		"website":                u.Website,
		"gender":                 u.Gender,
		"birthdate":              u.Birthdate,
		"address_formatted":      u.Address.Formatted,
		"address_street_address": u.Address.StreetAddress,
		"address_locality":       u.Address.Locality,
		"address_region":         u.Address.Region,
		"address_postal_code":    u.Address.PostalCode,
		"address_country":        u.Address.Country,
		"updated_at":             u.UpdatedAt,
	})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// DeleteUser removes a user; their consents and role assignments go with
// them.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	result := s.db(ctx).Where("id = ?", id).Delete(&userRow{})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// ListUsers returns up to limit users ordered by username, after the
// username after (exclusive). A non-empty search keeps users whose
// username, email or name contains it, case-insensitively.
func (s *Store) ListUsers(ctx context.Context, search, after string, limit int) ([]*User, error) {
	query := s.db(ctx).Model(&userRow{}).Order("username").Limit(limit)
	if after != "" {
		query = query.Where("username > ?", after)
	}
	if search != "" {
		pattern := "%" + strings.NewReplacer("\\", "\\\\", "%", "\\%", "_", "\\_").Replace(strings.ToLower(search)) + "%"
		query = query.Where("(LOWER(username) LIKE ? ESCAPE '\\' OR LOWER(email) LIKE ? ESCAPE '\\' OR LOWER(name) LIKE ? ESCAPE '\\')",
			pattern, pattern, pattern)
	}
	var rows []userRow
	if err := query.Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	users := make([]*User, 0, len(rows))
	for i := range rows {
		u := User(rows[i])
		users = append(users, &u)
	}
	return users, nil
}

// RevokeUserTokens ends a user's grants: their refresh and access token
// records are deleted and their unused codes invalidated, except those issued
// under the login session keepSessionID (empty keeps none).
func (s *Store) RevokeUserTokens(ctx context.Context, userID, keepSessionID string) error {
	db := s.db(ctx)
	// Deleted, not marked inactive: a later use of an inactive refresh token
	// would be reported as token theft.
	refresh := db.Table(tableRefreshTokens).Where("subject = ? AND session_id <> ?", userID, keepSessionID)
	if err := refresh.Delete(&requestRow{}).Error; err != nil {
		return translate(err)
	}
	access := db.Table(tableAccessTokens).Where("subject = ? AND session_id <> ?", userID, keepSessionID)
	if err := access.Delete(&requestRow{}).Error; err != nil {
		return translate(err)
	}
	codes := db.Table(tableAuthorizeCodes).Where("subject = ? AND session_id <> ?", userID, keepSessionID)
	return translate(codes.Update("active", false).Error)
}

// SetUserDisabled disables or enables a user.
func (s *Store) SetUserDisabled(ctx context.Context, userID string, disabled bool) error {
	result := s.db(ctx).Model(&userRow{}).Where("id = ?", userID).
		Updates(map[string]any{"disabled": disabled, "updated_at": time.Now().UTC()})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// GetUserForUpdate loads a user inside a transaction and locks the row
// until it ends, so that a read-modify-write cannot lose a concurrent
// change. SQLite needs no lock: its write transactions run one at a time.
func (s *Store) GetUserForUpdate(ctx context.Context, id string) (*User, error) {
	query := s.db(ctx).Where("id = ?", id)
	if s.database.Dialect == "postgres" {
		query = query.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var row userRow
	if err := query.Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	u := User(row)
	return &u, nil
}

// VerifiedEmailTaken reports whether a user other than excludeID has email
// as a verified address.
func (s *Store) VerifiedEmailTaken(ctx context.Context, email, excludeID string) (bool, error) {
	var count int64
	err := s.db(ctx).Model(&userRow{}).
		Where("LOWER(email) = ? AND email_verified = ? AND id <> ?", strings.ToLower(email), true, excludeID).
		Count(&count).Error
	return count > 0, translate(err)
}
