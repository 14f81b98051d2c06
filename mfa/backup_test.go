package mfa_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/mfa"
)

// backupCodePattern is the display form: three groups of four characters
// of lower-case Crockford base32.
var backupCodePattern = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

func TestNewBackupCodes(t *testing.T) {
	codec := newCodec(t, testKey(1))
	codes, hashes, err := codec.NewBackupCodes()
	if err != nil {
		t.Fatalf("NewBackupCodes: %v", err)
	}

	if len(codes) != mfa.BackupCodeCount {
		t.Fatalf("got %d codes, want %d", len(codes), mfa.BackupCodeCount)
	}
	if len(hashes) != len(codes) {
		t.Fatalf("got %d hashes for %d codes", len(hashes), len(codes))
	}

	seenCodes := map[string]bool{}
	seenHashes := map[string]bool{}
	for i, code := range codes {
		if !backupCodePattern.MatchString(code) {
			t.Errorf("code %q does not have the form xxxx-xxxx-xxxx", code)
		}
		if seenCodes[code] {
			t.Errorf("code %q appears twice", code)
		}
		seenCodes[code] = true

		if len(hashes[i]) != 32 {
			t.Errorf("hash of code %d is %d bytes, want 32", i, len(hashes[i]))
		}
		if seenHashes[string(hashes[i])] {
			t.Errorf("hash of code %d appears twice", i)
		}
		seenHashes[string(hashes[i])] = true

		if !bytes.Equal(codec.HashBackupCode(code), hashes[i]) {
			t.Errorf("HashBackupCode(%q) differs from the hash NewBackupCodes returned", code)
		}
		if !mfa.LooksLikeBackupCode(code) {
			t.Errorf("LooksLikeBackupCode(%q) = false", code)
		}
	}
}

func TestBackupCodeEntropy(t *testing.T) {
	// Each character is one of 32, so it carries 5 bits.
	const bitsPerCharacter = 5
	if mfa.BackupCodeBits < 50 {
		t.Errorf("BackupCodeBits = %d, want at least 50", mfa.BackupCodeBits)
	}

	codec := newCodec(t, testKey(1))
	used := map[rune]bool{}
	for range 20 {
		codes, _, err := codec.NewBackupCodes()
		if err != nil {
			t.Fatalf("NewBackupCodes: %v", err)
		}
		for _, code := range codes {
			characters := strings.ReplaceAll(code, "-", "")
			if got := len(characters) * bitsPerCharacter; got != mfa.BackupCodeBits {
				t.Errorf("code %q carries %d bits, BackupCodeBits claims %d", code, got, mfa.BackupCodeBits)
			}
			for _, r := range characters {
				used[r] = true
			}
		}
	}
	// 200 codes have 2,400 characters. The chance that a uniform choice
	// leaves out one of the 32 is below 1e-30, so a missing character means
	// the choice is biased.
	if len(used) != 32 {
		t.Errorf("200 codes use %d distinct characters, want all 32", len(used))
	}
}

func TestHashBackupCodeNormalizesInput(t *testing.T) {
	codec := newCodec(t, testKey(1))
	want := codec.HashBackupCode("k7m2-p9qx-4d01")
	if want == nil {
		t.Fatal("HashBackupCode of a well-formed code returned nil")
	}

	equivalent := []string{
		"k7m2p9qx4d01",
		"K7M2-P9QX-4D01",
		"k7m2 p9qx 4d01",
		" k7m2-p9qx-4d01 ",
		"k7m2\tp9qx\t4d01",
		"k7m2-p9qx-4dol",
		"k7m2-p9qx-4dOI",
	}
	for _, input := range equivalent {
		if got := codec.HashBackupCode(input); !bytes.Equal(got, want) {
			t.Errorf("HashBackupCode(%q) differs from HashBackupCode(%q)", input, "k7m2-p9qx-4d01")
		}
	}
}

func TestHashBackupCodeRejectsMalformedInput(t *testing.T) {
	codec := newCodec(t, testKey(1))
	malformed := []string{
		"",
		"123456",
		"k7m2-p9qx-4d0",
		"k7m2-p9qx-4d01a",
		"k7m2-p9qx-4d0u",
		"k7m2-p9qx-4d0!",
		"k7m2_p9qx_4d01",
		"k7m2-p9qx-4d0é",
	}
	for _, input := range malformed {
		if got := codec.HashBackupCode(input); got != nil {
			t.Errorf("HashBackupCode(%q) = %x, want nil", input, got)
		}
	}
}

func TestHashBackupCodeDependsOnKey(t *testing.T) {
	first := newCodec(t, testKey(1)).HashBackupCode("k7m2-p9qx-4d01")
	second := newCodec(t, testKey(2)).HashBackupCode("k7m2-p9qx-4d01")

	if bytes.Equal(first, second) {
		t.Error("two backup code keys give the same hash")
	}
}

func TestLooksLikeBackupCode(t *testing.T) {
	cases := []struct {
		input string
		want  bool
	}{
		{"123456", false},
		{"123 456", false},
		{"12345", false},
		{"", false},
		{"k7m2-p9qx-4d01", true},
		{"K7M2P9QX4D01", true},
		{"123456789012", true},
		{"1234-5678-9012", true},
		{"12345a", true},
	}
	for _, c := range cases {
		if got := mfa.LooksLikeBackupCode(c.input); got != c.want {
			t.Errorf("LooksLikeBackupCode(%q) = %v, want %v", c.input, got, c.want)
		}
	}
}
