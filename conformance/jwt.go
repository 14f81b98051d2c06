package conformance

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// jwtToken is a decoded compact JWS (or the header of a JWE) with its
// claims as JSON values.
type jwtToken struct {
	Raw    string
	Header map[string]any
	Claims map[string]any
	// Encrypted is true for a five-part JWE, whose claims are unknown.
	Encrypted bool
}

func (t *jwtToken) alg() string { s, _ := t.Header["alg"].(string); return s }
func (t *jwtToken) kid() string { s, _ := t.Header["kid"].(string); return s }

func (t *jwtToken) str(name string) string {
	s, _ := t.Claims[name].(string)
	return s
}

// number returns a numeric claim and whether it is present as a number.
func (t *jwtToken) number(name string) (float64, bool) {
	v, ok := t.Claims[name].(float64)
	return v, ok
}

// audiences returns aud as a list, whether it was a string or an array.
func (t *jwtToken) audiences() []string {
	switch aud := t.Claims["aud"].(type) {
	case string:
		return []string{aud}
	case []any:
		var out []string
		for _, a := range aud {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// parseJWT decodes a compact JWS without verifying it. A JWE is returned
// with only its header.
func parseJWT(raw string) (*jwtToken, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 && len(parts) != 5 {
		return nil, fmt.Errorf("a compact JWT has 3 or 5 parts, this one has %d", len(parts))
	}
	token := &jwtToken{Raw: raw}
	if err := decodeSegment(parts[0], &token.Header); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if len(parts) == 5 {
		token.Encrypted = true
		return token, nil
	}
	if err := decodeSegment(parts[1], &token.Claims); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return token, nil
}

func decodeSegment(segment string, into *map[string]any) error {
	data, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return fmt.Errorf("not base64url: %w", err)
	}
	if err := json.Unmarshal(data, into); err != nil || *into == nil {
		return errors.New("not a JSON object")
	}
	return nil
}

// verifyJWS verifies token's signature with the keys. With a kid in the
// header only the key with that kid is tried, and exactly one must exist.
// secret verifies HS256/384/512 tokens, which are keyed with the client
// secret.
func verifyJWS(token *jwtToken, keys []jose.JSONWebKey, secret string, useKid bool) error {
	alg := jose.SignatureAlgorithm(token.alg())
	if alg == "none" || alg == "" {
		return fmt.Errorf("the token is not signed (alg %q)", alg)
	}
	if strings.HasPrefix(string(alg), "HS") {
		if secret == "" {
			return fmt.Errorf("alg %s needs a client secret, and this client has none", alg)
		}
		signed, err := jose.ParseSigned(token.Raw, []jose.SignatureAlgorithm{alg})
		if err != nil {
			return err
		}
		_, err = signed.Verify([]byte(secret))
		return err
	}
	signed, err := jose.ParseSigned(token.Raw, supportedSigningAlgs)
	if err != nil {
		return err
	}
	candidates := signingKeysFor(keys, string(alg))
	if useKid && token.kid() != "" {
		var withKid []jose.JSONWebKey
		for _, k := range keys {
			if k.KeyID == token.kid() {
				withKid = append(withKid, k)
			}
		}
		switch {
		case len(withKid) == 0:
			return fmt.Errorf("no key in the JWK set has kid %q", token.kid())
		case len(withKid) > 1:
			return fmt.Errorf("%d keys in the JWK set have kid %q", len(withKid), token.kid())
		}
		candidates = signingKeysFor(withKid, string(alg))
		if len(candidates) == 0 {
			return fmt.Errorf("the key with kid %q does not fit alg %s (kty %s, alg %q, use %q)", token.kid(), alg, keyType(withKid[0]), withKid[0].Algorithm, withKid[0].Use)
		}
	}
	if len(candidates) == 0 {
		return fmt.Errorf("no key in the JWK set fits alg %s", alg)
	}
	for _, key := range candidates {
		if _, err := signed.Verify(key.Key); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no key of the JWK set verifies the %s signature", alg)
}

// signingKeysFor returns the keys whose type, alg and use allow alg.
func signingKeysFor(keys []jose.JSONWebKey, alg string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if keyTypeFor(alg) != keyType(k) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func keyTypeFor(alg string) string {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return "RSA"
	case strings.HasPrefix(alg, "ES"):
		return "EC"
	case alg == "EdDSA":
		return "OKP"
	}
	return ""
}

func keyType(k jose.JSONWebKey) string {
	switch k.Key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PublicKey, *ecdsa.PrivateKey:
		return "EC"
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "OKP"
	}
	return ""
}

// halfHash computes at_hash or c_hash: the base64url of the left half of
// the hash of value, with the hash function of the JWS alg (OpenID Connect
// Core §3.3.2.11). EdDSA uses SHA-512, as OpenID Connect's errata set.
func halfHash(alg, value string) (string, error) {
	var h hash.Hash
	switch {
	case strings.HasSuffix(alg, "256"):
		h = sha256.New()
	case strings.HasSuffix(alg, "384"):
		h = sha512.New384()
	case strings.HasSuffix(alg, "512"), alg == "EdDSA":
		h = sha512.New()
	default:
		return "", fmt.Errorf("no hash function is defined for alg %q", alg)
	}
	h.Write([]byte(value))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}
