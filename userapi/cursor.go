package userapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// Cursors are opaque to clients: a JSON position signed with HMAC-SHA256,
// so that a tampered cursor is rejected with 400 instead of reaching a
// query.
type cursorCodec struct {
	key []byte
}

var errBadCursor = errors.New("invalid cursor")

func (c cursorCodec) encode(kind string, position any) string {
	payload, _ := json.Marshal(map[string]any{"k": kind, "p": position})
	mac := hmac.New(sha256.New, c.key)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (c cursorCodec) decode(kind, cursor string, position any) error {
	encodedPayload, encodedMAC, found := strings.Cut(cursor, ".")
	if !found {
		return errBadCursor
	}
	payload, err := base64.RawURLEncoding.DecodeString(encodedPayload)
	if err != nil {
		return errBadCursor
	}
	sum, err := base64.RawURLEncoding.DecodeString(encodedMAC)
	if err != nil {
		return errBadCursor
	}
	mac := hmac.New(sha256.New, c.key)
	mac.Write(payload)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return errBadCursor
	}

	var wrapper struct {
		Kind     string          `json:"k"`
		Position json.RawMessage `json:"p"`
	}
	if err := json.Unmarshal(payload, &wrapper); err != nil || wrapper.Kind != kind {
		return errBadCursor
	}
	if err := json.Unmarshal(wrapper.Position, position); err != nil {
		return errBadCursor
	}
	return nil
}
