package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
)

// BackupCodeCount is the number of backup codes a user gets at a time.
const BackupCodeCount = 10

// backupCodeAlphabet is Crockford's base32 alphabet in lower case. It leaves
// out i, l, o and u, so that no character can be read as another.
const backupCodeAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// A backup code has backupCodeLength characters of 5 bits each, 60 bits in
// all, shown in groups of backupCodeGroup separated by hyphens
// ("k7m2-p9qx-4d8a").
const (
	backupCodeLength = 12
	backupCodeGroup  = 4
)

// BackupCodeBits is the entropy of one backup code in bits.
const BackupCodeBits = backupCodeLength * 5

// NewBackupCodes returns BackupCodeCount new, distinct backup codes for
// display, each with 60 random bits from crypto/rand, and their hashes in
// the same order for storage. The codes themselves must not be stored.
func (c *Codec) NewBackupCodes() (codes []string, hashes [][]byte, err error) {
	seen := make(map[string]bool, BackupCodeCount)
	for len(codes) < BackupCodeCount {
		code, err := randomBackupCode()
		if err != nil {
			return nil, nil, err
		}
		if seen[code] {
			continue
		}
		seen[code] = true
		codes = append(codes, formatBackupCode(code))
		hashes = append(hashes, c.hashNormalized(code))
	}
	return codes, hashes, nil
}

// HashBackupCode returns the HMAC-SHA256 of a backup code typed by a user,
// or nil when the input cannot be a backup code. Case, spaces and hyphens
// do not matter, and the letters o, i and l are read as the digits 0, 1 and
// 1 they are easily mistaken for.
func (c *Codec) HashBackupCode(code string) []byte {
	normalized, ok := normalizeBackupCode(code)
	if !ok {
		return nil
	}
	return c.hashNormalized(normalized)
}

// LooksLikeBackupCode reports whether input, typed into a field that takes
// either kind of code, is meant as a backup code rather than a TOTP code.
// It is when, ignoring spaces and hyphens, it contains a character other
// than an ASCII digit or has more than six digits. Input it reports as a
// TOTP code may still be malformed, and MatchTOTP then rejects it.
func LooksLikeBackupCode(input string) bool {
	length := 0
	for _, r := range input {
		switch {
		case isSeparator(r):
			continue
		case r < '0' || r > '9':
			return true
		}
		length++
	}
	return length > CodeDigits
}

func (c *Codec) hashNormalized(code string) []byte {
	mac := hmac.New(sha256.New, c.backupCodeKey)
	mac.Write([]byte(code))
	return mac.Sum(nil)
}

// randomBackupCode returns backupCodeLength random characters of
// backupCodeAlphabet. Each random byte picks one character by its low five
// bits, which are uniform because 256 is a multiple of 32.
func randomBackupCode() (string, error) {
	random := make([]byte, backupCodeLength)
	if _, err := rand.Read(random); err != nil {
		return "", fmt.Errorf("mfa: read random bytes for a backup code: %w", err)
	}
	code := make([]byte, backupCodeLength)
	for i, b := range random {
		code[i] = backupCodeAlphabet[b&31]
	}
	return string(code), nil
}

// formatBackupCode inserts a hyphen between groups of a normalized code.
func formatBackupCode(code string) string {
	var formatted strings.Builder
	for i := 0; i < len(code); i += backupCodeGroup {
		if i > 0 {
			formatted.WriteByte('-')
		}
		formatted.WriteString(code[i:min(i+backupCodeGroup, len(code))])
	}
	return formatted.String()
}

// normalizeBackupCode returns the form of a typed backup code that is
// hashed: lower case, with separators removed and look-alike letters
// replaced. It reports false when the result is not backupCodeLength
// characters of backupCodeAlphabet.
func normalizeBackupCode(input string) (string, bool) {
	var normalized strings.Builder
	for _, r := range input {
		if isSeparator(r) {
			continue
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		switch r {
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if !strings.ContainsRune(backupCodeAlphabet, r) {
			return "", false
		}
		normalized.WriteRune(r)
		if normalized.Len() > backupCodeLength {
			return "", false
		}
	}
	if normalized.Len() != backupCodeLength {
		return "", false
	}
	return normalized.String(), true
}

// isSeparator reports whether r is a character users type between groups
// of a code: a space, a tab or a hyphen.
func isSeparator(r rune) bool {
	return r == ' ' || r == '\t' || r == '-'
}
