package storage

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// MFA is a user's TOTP enrolment and the state that guards it.
type MFA struct {
	UserID string
	// TOTPSecret is the secret as sealed by mfa.Codec.SealSecret.
	TOTPSecret []byte
	// Confirmed is false while the enrolment waits for its first code.
	Confirmed bool
	CreatedAt time.Time
	// ConfirmedAt is zero while the enrolment is pending.
	ConfirmedAt time.Time
	// LastStep is the last TOTP time step accepted, zero before any. A code
	// is accepted only for a later step, so that no code works twice.
	LastStep int64
	// LockedUntil is the end of the account-wide lock of the MFA step after
	// too many wrong codes. Zero means not locked.
	LockedUntil time.Time
	// BackupCodesLeft counts the unused backup codes.
	BackupCodesLeft int
	// FailedCodes counts the code checks since the last success or lock.
	FailedCodes int
}

// LogValue logs an enrolment by user id only, so the sealed secret never
// reaches a log.
func (m MFA) LogValue() slog.Value { return slog.StringValue(m.UserID) }

type userMFARow struct {
	UserID      string `gorm:"primaryKey"`
	TOTPSecret  []byte `gorm:"column:totp_secret"`
	Confirmed   bool
	CreatedAt   time.Time
	ConfirmedAt *time.Time
	LastStep    int64
	LockedUntil *time.Time
	FailedCodes int
}

func (userMFARow) TableName() string { return "user_mfa" }

type backupCodeRow struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	CodeHash  []byte
	UsedAt    *time.Time
	CreatedAt time.Time
}

func (backupCodeRow) TableName() string { return "backup_codes" }

type mfaChallengeRow struct {
	ID        string `gorm:"primaryKey"`
	UserID    string
	Failures  int
	ExpiresAt time.Time
	CreatedAt time.Time
}

func (mfaChallengeRow) TableName() string { return "mfa_challenges" }

// GetMFA loads a user's TOTP enrolment, pending or confirmed, with the
// number of unused backup codes. A user without one returns
// fosite.ErrNotFound.
func (s *Store) GetMFA(ctx context.Context, userID string) (*MFA, error) {
	var row userMFARow
	if err := s.db(ctx).Where("user_id = ?", userID).Take(&row).Error; err != nil {
		return nil, translate(err)
	}

	var left int64
	err := s.db(ctx).Model(&backupCodeRow{}).Where("user_id = ? AND used_at IS NULL", userID).Count(&left).Error
	if err != nil {
		return nil, translate(err)
	}

	m := &MFA{
		UserID:          row.UserID,
		TOTPSecret:      row.TOTPSecret,
		Confirmed:       row.Confirmed,
		CreatedAt:       row.CreatedAt,
		LastStep:        row.LastStep,
		BackupCodesLeft: int(left),
		FailedCodes:     row.FailedCodes,
	}
	if row.ConfirmedAt != nil {
		m.ConfirmedAt = *row.ConfirmedAt
	}
	if row.LockedUntil != nil {
		m.LockedUntil = *row.LockedUntil
	}
	return m, nil
}

// SaveTOTPEnrollment stores a pending TOTP enrolment, replacing an earlier
// pending one and keeping any lock. It returns ErrConflict when the user
// has a confirmed enrolment, which must be deleted first, and
// fosite.ErrNotFound for an unknown user.
func (s *Store) SaveTOTPEnrollment(ctx context.Context, userID string, sealedSecret []byte) error {
	if len(sealedSecret) == 0 {
		return errors.New("save TOTP enrolment: missing sealed secret")
	}

	now := time.Now().UTC().Truncate(time.Second)
	// The WHERE clause of DO UPDATE leaves a confirmed row alone, and then
	// no row is affected.
	result := s.db(ctx).Exec(`INSERT INTO user_mfa (user_id, totp_secret, confirmed, created_at, last_step)
VALUES (?, ?, ?, ?, 0)
ON CONFLICT (user_id) DO UPDATE SET totp_secret = excluded.totp_secret, created_at = excluded.created_at, last_step = 0
WHERE user_mfa.confirmed = ?`, userID, sealedSecret, false, now, false)
	if result.Error != nil {
		return translateReference(result.Error)
	}
	if result.RowsAffected == 0 {
		return fmt.Errorf("%w: user %s has a confirmed TOTP enrolment", ErrConflict, userID)
	}
	return nil
}

// ConfirmTOTP confirms a pending enrolment after the user proved it with
// the code of step, records step as the last one accepted, and replaces the
// user's backup codes with backupCodeHashes, all in one transaction. It
// returns fosite.ErrNotFound when there is no enrolment and ErrConflict when
// it is already confirmed, so that of two concurrent calls one fails.
func (s *Store) ConfirmTOTP(ctx context.Context, userID string, step int64, backupCodeHashes [][]byte) error {
	if err := validateHashes(backupCodeHashes); err != nil {
		return err
	}

	return s.InTx(ctx, func(ctx context.Context) error {
		now := time.Now().UTC().Truncate(time.Second)
		result := s.db(ctx).Model(&userMFARow{}).Where("user_id = ? AND confirmed = ?", userID, false).
			Updates(map[string]any{"confirmed": true, "confirmed_at": now, "last_step": step})
		if result.Error != nil {
			return translate(result.Error)
		}
		if result.RowsAffected == 0 {
			var row userMFARow
			if err := s.db(ctx).Where("user_id = ?", userID).Take(&row).Error; err != nil {
				return translate(err)
			}
			return fmt.Errorf("%w: the TOTP enrolment of user %s is already confirmed", ErrConflict, userID)
		}
		return s.replaceBackupCodes(ctx, userID, backupCodeHashes, now)
	})
}

// AcceptTOTPStep records step as the user's last accepted TOTP step if it
// is later than the one recorded, in a single conditional UPDATE, so that
// of two concurrent calls with one step exactly one returns true. It
// returns false for a step not later than the last one, which means a
// replayed code, and fosite.ErrNotFound when the user has no confirmed
// enrolment. It does not check LockedUntil: the caller must.
func (s *Store) AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	result := s.db(ctx).Model(&userMFARow{}).
		Where("user_id = ? AND confirmed = ? AND last_step < ?", userID, true, step).
		Update("last_step", step)
	if result.Error != nil {
		return false, translate(result.Error)
	}
	if result.RowsAffected == 1 {
		return true, nil
	}

	var row userMFARow
	if err := s.db(ctx).Where("user_id = ?", userID).Take(&row).Error; err != nil {
		return false, translate(err)
	}
	if !row.Confirmed {
		return false, fosite.ErrNotFound
	}
	return false, nil
}

// ReplaceBackupCodes deletes the user's backup codes, used or not, and
// stores hashes as the new ones, in one transaction. The user must have a
// confirmed enrolment, or it returns fosite.ErrNotFound.
func (s *Store) ReplaceBackupCodes(ctx context.Context, userID string, hashes [][]byte) error {
	if err := validateHashes(hashes); err != nil {
		return err
	}

	return s.InTx(ctx, func(ctx context.Context) error {
		// Locking the enrolment row makes concurrent replacements run one
		// after the other, so that the codes of only one of them survive.
		// SQLite needs no lock: its write transactions run one at a time.
		query := s.db(ctx).Where("user_id = ? AND confirmed = ?", userID, true)
		if s.database.Dialect == "postgres" {
			query = query.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var row userMFARow
		if err := query.Take(&row).Error; err != nil {
			return translate(err)
		}
		return s.replaceBackupCodes(ctx, userID, hashes, time.Now().UTC().Truncate(time.Second))
	})
}

func (s *Store) replaceBackupCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	if err := s.db(ctx).Where("user_id = ?", userID).Delete(&backupCodeRow{}).Error; err != nil {
		return translate(err)
	}
	if len(hashes) == 0 {
		return nil
	}
	rows := make([]backupCodeRow, 0, len(hashes))
	for _, hash := range hashes {
		rows = append(rows, backupCodeRow{ID: uuid.NewString(), UserID: userID, CodeHash: hash, CreatedAt: now})
	}
	return translateReference(s.db(ctx).Create(&rows).Error)
}

func validateHashes(hashes [][]byte) error {
	for i, hash := range hashes {
		if len(hash) == 0 {
			return fmt.Errorf("invalid backup code hash %d: it is empty", i)
		}
	}
	return nil
}

// UseBackupCode marks the user's unused backup code with this hash as used
// and reports whether there was one. The hash is compared with every unused
// code of the user in constant time. The code is then marked with a
// conditional UPDATE, so that of two concurrent uses of one code exactly
// one returns true. An empty hash, which mfa.Codec.HashBackupCode returns
// for malformed input, matches nothing.
func (s *Store) UseBackupCode(ctx context.Context, userID string, hash []byte) (bool, error) {
	if len(hash) == 0 {
		return false, nil
	}

	var rows []backupCodeRow
	err := s.db(ctx).Select("id", "code_hash").Where("user_id = ? AND used_at IS NULL", userID).Find(&rows).Error
	if err != nil {
		return false, translate(err)
	}

	// Every code is compared, so that the time taken does not tell which
	// one matched.
	matchedID := ""
	for _, row := range rows {
		if subtle.ConstantTimeCompare(row.CodeHash, hash) == 1 {
			matchedID = row.ID
		}
	}
	if matchedID == "" {
		return false, nil
	}

	result := s.db(ctx).Model(&backupCodeRow{}).Where("id = ? AND used_at IS NULL", matchedID).
		Update("used_at", time.Now().UTC())
	if result.Error != nil {
		return false, translate(result.Error)
	}
	return result.RowsAffected == 1, nil
}

// DeleteMFA removes the user's TOTP enrolment, backup codes and MFA
// challenges in one transaction. A user without them is not an error. The
// account-wide lock goes with the enrolment.
func (s *Store) DeleteMFA(ctx context.Context, userID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		db := s.db(ctx)
		if err := db.Where("user_id = ?", userID).Delete(&mfaChallengeRow{}).Error; err != nil {
			return translate(err)
		}
		if err := db.Where("user_id = ?", userID).Delete(&backupCodeRow{}).Error; err != nil {
			return translate(err)
		}
		return translate(db.Where("user_id = ?", userID).Delete(&userMFARow{}).Error)
	})
}

// LockMFA locks the user's MFA step until the given time, replacing any
// earlier lock, and starts a new count of code checks for after it. A zero
// time removes the lock. A user without an enrolment returns
// fosite.ErrNotFound.
func (s *Store) LockMFA(ctx context.Context, userID string, until time.Time) error {
	var lockedUntil any
	if !until.IsZero() {
		lockedUntil = until.UTC()
	}
	result := s.db(ctx).Model(&userMFARow{}).Where("user_id = ?", userID).
		Updates(map[string]any{"locked_until": lockedUntil, "failed_codes": 0})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// CreateMFAChallenge stores the MFA step of one login attempt under id, a
// random value the caller chooses, with no failures yet. A taken id returns
// ErrConflict and an unknown user fosite.ErrNotFound. DeleteExpired removes
// the challenge after expiresAt.
func (s *Store) CreateMFAChallenge(ctx context.Context, id, userID string, expiresAt time.Time) error {
	if id == "" {
		return errors.New("create MFA challenge: missing id")
	}
	if expiresAt.IsZero() {
		return errors.New("create MFA challenge: missing expiry time")
	}

	row := mfaChallengeRow{
		ID:        id,
		UserID:    userID,
		ExpiresAt: expiresAt.UTC(),
		CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	return translateReference(s.db(ctx).Create(&row).Error)
}

// GetMFAChallenge returns the user and the number of wrong codes of a
// challenge. A missing or expired challenge returns fosite.ErrNotFound.
func (s *Store) GetMFAChallenge(ctx context.Context, id string) (userID string, failures int, err error) {
	var row mfaChallengeRow
	err = s.db(ctx).Where("id = ? AND expires_at > ?", id, time.Now().UTC()).Take(&row).Error
	if err != nil {
		return "", 0, translate(err)
	}
	return row.UserID, row.Failures, nil
}

// RecordMFAChallengeFailure adds one wrong code to a challenge and returns
// the new count, in a single UPDATE, so that concurrent failures are all
// counted. A missing or expired challenge returns fosite.ErrNotFound.
func (s *Store) RecordMFAChallengeFailure(ctx context.Context, id string) (failures int, err error) {
	var counts []int
	err = s.db(ctx).Raw("UPDATE mfa_challenges SET failures = failures + 1 WHERE id = ? AND expires_at > ? RETURNING failures",
		id, time.Now().UTC()).Scan(&counts).Error
	if err != nil {
		return 0, translate(err)
	}
	if len(counts) == 0 {
		return 0, fosite.ErrNotFound
	}
	return counts[0], nil
}

// ErrMFALocked is returned by ReserveMFACheck when the user's MFA step is
// locked or has no checks left before the lock.
var ErrMFALocked = errors.New("MFA step locked")

// ReserveMFACheck counts one code check against the user before the code
// is checked, in one UPDATE that also tests the lock, and returns the count
// including this one. At most limit checks are reserved between a success
// and a lock, however many requests run at once; beyond that it returns
// ErrMFALocked.
func (s *Store) ReserveMFACheck(ctx context.Context, userID string, limit int, now time.Time) (int, error) {
	var counts []int
	err := s.db(ctx).Raw(`UPDATE user_mfa SET failed_codes = failed_codes + 1
		WHERE user_id = ? AND confirmed AND failed_codes < ? AND (locked_until IS NULL OR locked_until <= ?)
		RETURNING failed_codes`, userID, limit, now.UTC()).Scan(&counts).Error
	if err != nil {
		return 0, translate(err)
	}
	if len(counts) == 0 {
		return 0, ErrMFALocked
	}
	return counts[0], nil
}

// ReleaseMFACheck gives back a check reserved for a code that turned out
// to be right but already used, which gives a guesser no information.
func (s *Store) ReleaseMFACheck(ctx context.Context, userID string) error {
	return translate(s.db(ctx).Model(&userMFARow{}).Where("user_id = ? AND failed_codes > 0", userID).
		Update("failed_codes", gorm.Expr("failed_codes - 1")).Error)
}

// ResetMFAChecks clears the user's count of code checks after a correct
// code.
func (s *Store) ResetMFAChecks(ctx context.Context, userID string) error {
	return translate(s.db(ctx).Model(&userMFARow{}).Where("user_id = ?", userID).Update("failed_codes", 0).Error)
}

// DeleteUserMFAChallenges ends every open MFA step of a user, for a
// password change, a disabled account or a reset second factor.
func (s *Store) DeleteUserMFAChallenges(ctx context.Context, userID string) error {
	return translate(s.db(ctx).Where("user_id = ?", userID).Delete(&mfaChallengeRow{}).Error)
}

// DeleteMFAChallenge removes a challenge, expired or not. A missing one
// returns fosite.ErrNotFound, so that of two concurrent calls exactly one
// succeeds.
func (s *Store) DeleteMFAChallenge(ctx context.Context, id string) error {
	result := s.db(ctx).Where("id = ?", id).Delete(&mfaChallengeRow{})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// translateReference maps a foreign key violation to fosite.ErrNotFound,
// because in the MFA tables it means that the user does not exist. Other
// errors go through translate.
func translateReference(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fosite.ErrNotFound
	}
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed") {
		return fosite.ErrNotFound
	}
	return translate(err)
}
