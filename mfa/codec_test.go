package mfa_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/latchkey/latchkey/mfa"
)

// gcmSealer is an AES-256-GCM Sealer like provider.Sealer, which this
// package must not import.
type gcmSealer struct {
	aead cipher.AEAD
}

func newGCMSealer(t *testing.T) *gcmSealer {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &gcmSealer{aead: aead}
}

func (s *gcmSealer) Seal(plaintext, additionalData []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, additionalData)
}

func (s *gcmSealer) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < s.aead.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	nonce, ciphertext := sealed[:s.aead.NonceSize()], sealed[s.aead.NonceSize():]
	return s.aead.Open(nil, nonce, ciphertext, additionalData)
}

func newCodec(t *testing.T, backupCodeKey []byte) *mfa.Codec {
	t.Helper()
	codec, err := mfa.NewCodec(newGCMSealer(t), backupCodeKey)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return codec
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, mfa.BackupCodeKeySize) }

func TestNewCodecValidatesArguments(t *testing.T) {
	if _, err := mfa.NewCodec(nil, testKey(1)); err == nil {
		t.Error("NewCodec without a sealer succeeded")
	}
	if _, err := mfa.NewCodec(newGCMSealer(t), make([]byte, 16)); err == nil {
		t.Error("NewCodec with a 16-byte backup code key succeeded")
	}
	if _, err := mfa.NewCodec(newGCMSealer(t), nil); err == nil {
		t.Error("NewCodec without a backup code key succeeded")
	}
}

func TestSealSecretRoundTrip(t *testing.T) {
	codec := newCodec(t, testKey(1))
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

	sealed := codec.SealSecret("user-1", secret)
	if bytes.Contains(sealed, []byte(secret)) {
		t.Error("sealed secret contains the plaintext")
	}

	opened, err := codec.OpenSecret("user-1", sealed)
	if err != nil {
		t.Fatalf("OpenSecret: %v", err)
	}
	if opened != secret {
		t.Errorf("OpenSecret = %q, want %q", opened, secret)
	}
}

func TestOpenSecretRejectsOtherUser(t *testing.T) {
	codec := newCodec(t, testKey(1))
	sealed := codec.SealSecret("user-1", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")

	if _, err := codec.OpenSecret("user-2", sealed); err == nil {
		t.Error("secret sealed for user-1 opened for user-2")
	}
}

func TestOpenSecretRejectsAlteredValue(t *testing.T) {
	codec := newCodec(t, testKey(1))
	sealed := codec.SealSecret("user-1", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
	sealed[len(sealed)-1] ^= 1

	if _, err := codec.OpenSecret("user-1", sealed); err == nil {
		t.Error("altered sealed secret opened")
	}
}
