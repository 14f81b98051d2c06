package testsupport

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/mfa"
)

// JWTPayload decodes the payload of a compact JWT without verifying it.
func JWTPayload(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %d parts in %.80q", len(parts), raw)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(data, &claims); err != nil {
		t.Fatalf("JWT payload is not JSON: %v", err)
	}
	return claims
}

// StringsClaim converts a JSON array claim, such as amr, to strings.
// Anything else becomes nil.
func StringsClaim(value any) []string {
	items, ok := value.([]any)
	if !ok {
		return nil
	}
	values := make([]string, 0, len(items))
	for _, item := range items {
		text, ok := item.(string)
		if !ok {
			return nil
		}
		values = append(values, text)
	}
	return values
}

// CurrentTOTPStep returns the TOTP time step of now.
func CurrentTOTPStep() int64 {
	return time.Now().Unix() / int64(mfa.Period/time.Second)
}

// TOTPCode returns the TOTP code of secret for step.
func TOTPCode(t testing.TB, secret string, step int64) string {
	t.Helper()
	code, err := mfa.StepCode(secret, step)
	if err != nil {
		t.Fatalf("compute the TOTP code of step %d: %v", step, err)
	}
	return code
}

// WrongTOTPCode returns six digits that match the code of secret for no
// step within three steps of now.
func WrongTOTPCode(t testing.TB, secret string) string {
	t.Helper()
	now := CurrentTOTPStep()
	nearby := map[string]bool{}
	for step := now - 3; step <= now+3; step++ {
		nearby[TOTPCode(t, secret, step)] = true
	}
	for candidate := 0; ; candidate++ {
		code := fmt.Sprintf("%06d", candidate)
		if !nearby[code] {
			return code
		}
	}
}
