package mfa

import (
	"errors"
	"fmt"
	"log/slog"
)

// Sealer encrypts and authenticates small values. *provider.Sealer
// (AES-256-GCM) implements it.
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// BackupCodeKeySize is the length in bytes of the key that backup codes are
// hashed with.
const BackupCodeKeySize = 32

// secretPurpose prefixes the additional data of a sealed TOTP secret, so
// that a value sealed for another purpose by the same Sealer never opens as
// a TOTP secret.
const secretPurpose = "latchkey totp secret v1\x00"

// Codec seals TOTP secrets and hashes backup codes with the keys it was
// created with. It is safe for concurrent use if its Sealer is, as
// provider.Sealer is.
type Codec struct {
	sealer        Sealer
	backupCodeKey []byte
}

// NewCodec returns a codec that seals TOTP secrets with sealer and hashes
// backup codes with HMAC-SHA256 under backupCodeKey, which must be
// BackupCodeKeySize bytes. Every process that checks codes must use the same
// sealer key and backup code key.
func NewCodec(sealer Sealer, backupCodeKey []byte) (*Codec, error) {
	if sealer == nil {
		return nil, errors.New("mfa: missing sealer")
	}
	if len(backupCodeKey) != BackupCodeKeySize {
		return nil, fmt.Errorf("mfa: invalid backup code key: it is %d bytes, it must be %d", len(backupCodeKey), BackupCodeKeySize)
	}
	return &Codec{sealer: sealer, backupCodeKey: append([]byte(nil), backupCodeKey...)}, nil
}

// LogValue keeps the keys out of logs.
func (Codec) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// SealSecret encrypts a TOTP secret for storage. The result opens only with
// OpenSecret and the same userID, so that a sealed secret copied to another
// user's row is rejected.
func (c *Codec) SealSecret(userID, secret string) []byte {
	return c.sealer.Seal([]byte(secret), secretAdditionalData(userID))
}

// OpenSecret decrypts a TOTP secret sealed by SealSecret for userID. It
// fails when the value was sealed for another user, under another key, or
// was altered.
func (c *Codec) OpenSecret(userID string, sealed []byte) (string, error) {
	secret, err := c.sealer.Open(sealed, secretAdditionalData(userID))
	if err != nil {
		return "", fmt.Errorf("mfa: open TOTP secret of user %s: %w", userID, err)
	}
	return string(secret), nil
}

func secretAdditionalData(userID string) []byte {
	return []byte(secretPurpose + userID)
}
