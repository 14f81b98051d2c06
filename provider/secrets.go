package provider

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/ory/fosite"
	"golang.org/x/crypto/argon2"

	"github.com/latchkey/latchkey/storage"
)

// MinSystemSecretLength is the shortest system secret accepted, in bytes.
const MinSystemSecretLength = 32

// Purposes of the keys derived from the system secret. Each purpose gets an
// independent key, so that no two mechanisms ever share key material.
const (
	purposeFositeHMAC    = "latchkey fosite token hmac v1"
	purposeClientSecrets = "latchkey client secret hash v1"
	purposeSigningKeys   = "latchkey signing key encryption v1"
	purposeFlow          = "latchkey login flow sealing v1"
	purposeCSRF          = "latchkey csrf v1"
)

// DeriveKey derives a 32-byte key for one purpose from the system secret
// with HKDF-SHA256 (RFC 5869).
func DeriveKey(systemSecret []byte, purpose string) ([]byte, error) {
	if len(systemSecret) < MinSystemSecretLength {
		return nil, fmt.Errorf("system secret is %d bytes; at least %d are required", len(systemSecret), MinSystemSecretLength)
	}
	return hkdf.Key(sha256.New, systemSecret, nil, purpose, 32)
}

// Sealer encrypts and authenticates small values with AES-256-GCM.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a sealer keyed with a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext, and additionalData binds the result to its context.
func (s *Sealer) Seal(plaintext, additionalData []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, additionalData)
}

// Open decrypts a value made by Seal with the same additionalData.
func (s *Sealer) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < s.aead.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	nonce, ciphertext := sealed[:s.aead.NonceSize()], sealed[s.aead.NonceSize():]
	return s.aead.Open(nil, nonce, ciphertext, additionalData)
}

// SecretHasher hashes client secrets with HMAC-SHA256 under a key derived
// from the system secret. Client secrets are random 256-bit values, so a
// keyed fast hash is as strong as a slow password hash against guessing,
// and checking one costs microseconds instead of capping the token endpoint.
type SecretHasher struct {
	key []byte
}

var _ fosite.Hasher = (*SecretHasher)(nil)

// NewSecretHasher derives the hashing key from the system secret.
func NewSecretHasher(systemSecret []byte) (*SecretHasher, error) {
	key, err := DeriveKey(systemSecret, purposeClientSecrets)
	if err != nil {
		return nil, err
	}
	return &SecretHasher{key: key}, nil
}

// Hash returns the keyed hash of a secret.
func (h *SecretHasher) Hash(_ context.Context, secret []byte) ([]byte, error) {
	mac := hmac.New(sha256.New, h.key)
	mac.Write(secret)
	return mac.Sum(nil), nil
}

// Compare checks a secret against a hash in constant time.
func (h *SecretHasher) Compare(ctx context.Context, hash, secret []byte) error {
	computed, _ := h.Hash(ctx, secret)
	if !hmac.Equal(hash, computed) {
		return errors.New("client secret does not match")
	}
	return nil
}

// GenerateClientSecret returns a new client secret of 256 random bits,
// base64url-encoded without padding: it contains no '+', '/' or '%', so it
// survives the form encoding of client_secret_basic unchanged.
func GenerateClientSecret() string {
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Argon2id parameters: the OWASP Password Storage Cheat Sheet's first
// recommendation (19 MiB of memory, two passes, one thread).
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLength = 32
	argonSaltBytes = 16
)

// HashPassword hashes a password with argon2id and returns it in the PHC
// string format.
func HashPassword(password string) string {
	salt := make([]byte, argonSaltBytes)
	_, _ = rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLength)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// dummyPasswordHash is checked when a username is unknown, so that a wrong
// username costs the same time as a wrong password.
var dummyPasswordHash = HashPassword("latchkey timing equaliser")

// VerifyPassword reports whether password matches an argon2id PHC hash. The
// parameters are read from the hash, so hashes made with older parameters
// keep working.
func VerifyPassword(encoded, password string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}

	var memory, iterations uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &iterations, &threads); err != nil {
		return false
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}

	got := argon2.IDKey([]byte(password), salt, iterations, memory, threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// PasswordLimiter bounds how many argon2id checks run at once. Each one
// holds argonMemoryKiB of memory, so unbounded concurrent logins would let
// anyone exhaust the server's memory without an account.
type PasswordLimiter struct {
	slots chan struct{}
	wait  time.Duration
}

// errPasswordCheckBusy is returned when no slot frees up in time; callers
// respond with 503.
var errPasswordCheckBusy = errors.New("too many sign-ins in progress")

// NewPasswordLimiter allows as many concurrent checks as there are CPUs,
// and at least two.
func NewPasswordLimiter() *PasswordLimiter {
	return &PasswordLimiter{slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))), wait: 10 * time.Second}
}

// Verify checks password against encoded once a slot is free. It fails
// with an error wrapping storage.ErrUnavailable when none frees up in time.
func (l *PasswordLimiter) Verify(ctx context.Context, encoded, password string) (bool, error) {
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
	case <-timer.C:
		return false, errors.Join(storage.ErrUnavailable, errPasswordCheckBusy)
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-l.slots }()
	return VerifyPassword(encoded, password), nil
}
