package mfa

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters. pquerna/otp v1.5.0 documents them as the settings
// compatible with Google Authenticator and most other clients.
const (
	// Period is the length of one TOTP time step.
	Period = 30 * time.Second
	// CodeDigits is the number of digits in a TOTP code.
	CodeDigits = 6
	// Skew is how many steps before and after the current one MatchTOTP
	// accepts, to allow for clock drift between server and device.
	Skew = 1
)

// MaxChallengeFailures is the number of wrong codes after which the caller
// must end the login attempt's MFA step and lock the account's MFA step.
const MaxChallengeFailures = 5

// QR code size of an enrolment, in pixels.
const qrCodeSize = 256

// secretSize is the length of a new TOTP secret in bytes: 160 bits, the
// length RFC 4226 section 4 recommends.
const secretSize = 20

// minSecretSize is the shortest secret StepCode accepts, in bytes: 128
// bits, the minimum of RFC 4226 section 4.
const minSecretSize = 16

// Enrollment is a new TOTP secret with the two forms an authenticator app
// reads it in.
type Enrollment struct {
	// Secret is the shared secret in base32 without padding, for typing in
	// by hand.
	Secret string
	// URI is the otpauth://totp/ URI with the secret, issuer, algorithm,
	// digits and period.
	URI string
	// QRCodePNG is the URI as a 256×256 PNG QR code.
	QRCodePNG []byte
}

// LogValue keeps the secret out of logs.
func (Enrollment) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// NewEnrollment generates a random 160-bit TOTP secret. The authenticator
// app lists it under issuer and accountName, which must not be empty or
// contain a colon, because a colon separates them in the URI's label. The secret is
// not stored: the caller seals it with SealSecret and saves it as pending
// until the user proves with a code that the app has it.
func (c *Codec) NewEnrollment(issuer, accountName string) (*Enrollment, error) {
	if issuer == "" || strings.Contains(issuer, ":") {
		return nil, fmt.Errorf("mfa: invalid issuer %q: it must be non-empty and contain no colon", issuer)
	}
	if accountName == "" || strings.Contains(accountName, ":") {
		return nil, fmt.Errorf("mfa: invalid account name %q: it must be non-empty and contain no colon", accountName)
	}

	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: accountName,
		Period:      uint(Period / time.Second),
		SecretSize:  secretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: generate TOTP secret: %w", err)
	}

	img, err := key.Image(qrCodeSize, qrCodeSize)
	if err != nil {
		return nil, fmt.Errorf("mfa: draw QR code: %w", err)
	}
	var qrCode bytes.Buffer
	if err := png.Encode(&qrCode, img); err != nil {
		return nil, fmt.Errorf("mfa: encode QR code as PNG: %w", err)
	}

	return &Enrollment{Secret: key.Secret(), URI: key.URL(), QRCodePNG: qrCode.Bytes()}, nil
}

// MatchTOTP checks code against the steps before, at and after now, and
// returns the step it matched (Unix time divided by 30 s). When two steps
// share the code, the later one is returned, so that replay protection keyed
// on the step rejects the code in both. A code that is not exactly six ASCII
// digits, or a secret StepCode rejects, never matches. Every step is
// compared, in constant time, whatever the result.
//
// MatchTOTP does not stop replays: the caller must accept the returned step
// only if it is greater than the last step accepted for the user.
func MatchTOTP(secret, code string, now time.Time) (step int64, ok bool) {
	if !isTOTPCode(code) {
		return 0, false
	}

	current := stepAt(now)
	matched := 0
	for candidate := current - Skew; candidate <= current+Skew; candidate++ {
		expected, err := StepCode(secret, candidate)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(expected), []byte(code)) == 1 {
			step, matched = candidate, 1
		}
	}
	return step, matched == 1
}

// StepCode returns the TOTP code of a time step (Unix time divided by 30 s).
// It fails for a negative step and for a secret that is not base32 or is
// shorter than 128 bits.
func StepCode(secret string, step int64) (string, error) {
	if step < 0 {
		return "", fmt.Errorf("mfa: invalid TOTP step %d: it must not be negative", step)
	}
	if err := validateSecret(secret); err != nil {
		return "", err
	}
	return hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{
		Digits:    otp.DigitsSix,
		Algorithm: otp.AlgorithmSHA1,
	})
}

// validateSecret checks that secret is base32, in either case and with or
// without padding, as pquerna/otp v1.5.0 accepts it, and is long enough.
func validateSecret(secret string) error {
	normalized := strings.TrimRight(strings.ToUpper(strings.TrimSpace(secret)), "=")
	decoded, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(normalized)
	if err != nil {
		return errors.New("mfa: invalid TOTP secret: it is not base32")
	}
	if len(decoded) < minSecretSize {
		return fmt.Errorf("mfa: invalid TOTP secret: it is %d bytes, at least %d are required", len(decoded), minSecretSize)
	}
	return nil
}

// stepAt returns the time step that contains t, rounding down.
func stepAt(t time.Time) int64 {
	seconds := t.Unix()
	period := int64(Period / time.Second)
	step := seconds / period
	if seconds%period < 0 {
		step--
	}
	return step
}

func isTOTPCode(code string) bool {
	if len(code) != CodeDigits {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}
