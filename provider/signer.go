package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite/token/jwt"
)

// tokenSigner signs JWTs with the active key of one algorithm and verifies
// them with whichever published key their kid names. fosite's DefaultSigner
// verifies with the current key only, so tokens signed before a rotation
// would fail introspection and id_token_hint. This signer does not.
type tokenSigner struct {
	keys      *KeySet
	algorithm string
}

var _ jwt.Signer = (*tokenSigner)(nil)

// Generate signs claims with the active key and sets its kid in the header.
// fosite adds a non-standard "rat" (requested at) claim to ID tokens when it
// needs the request time for max_age. It is removed here.
func (s *tokenSigner) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	if claims == nil || header == nil {
		return "", "", errors.New("claims and header are required")
	}
	key, err := s.keys.activeKey(s.algorithm)
	if err != nil {
		return "", "", err
	}

	delete(claims, "rat")
	if scope, ok := claims["scope"].(string); ok && scope == "" {
		// fosite writes an empty scope when none was granted.
		delete(claims, "scope")
	}
	integralNumbers(claims)
	token := jwt.NewWithClaims(josev3.SignatureAlgorithm(s.algorithm), claims)
	for name, value := range header.ToMap() {
		if name != "alg" {
			token.Header[name] = value
		}
	}
	token.Header["kid"] = key.kid

	raw, err := token.SignedString(key.private)
	if err != nil {
		return "", "", err
	}
	return raw, raw[strings.LastIndexByte(raw, '.')+1:], nil
}

// Validate verifies a token's signature and time claims and returns its
// signature part.
func (s *tokenSigner) Validate(ctx context.Context, raw string) (string, error) {
	if _, err := s.Decode(ctx, raw); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, raw)
}

// Decode verifies a token against the published key its kid names. The
// token's alg must be the algorithm of that key.
func (s *tokenSigner) Decode(ctx context.Context, raw string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(raw, jwt.MapClaims{}, func(t *jwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		key, err := s.keys.lookup(ctx, kid)
		if err != nil {
			return nil, err
		}
		if string(t.Method) != key.algorithm {
			return nil, errors.New("token algorithm does not match its key")
		}
		return key.public, nil
	})
}

// GetSignature returns the third part of a compact JWS.
func (s *tokenSigner) GetSignature(ctx context.Context, raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("a JWT has three parts")
	}
	return parts[2], nil
}

// Hash returns the SHA-256 digest used for at_hash and c_hash.
func (s *tokenSigner) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return sha256Sum(in), nil
}

// GetSigningMethodLength returns the SHA-256 digest size.
func (s *tokenSigner) GetSigningMethodLength(ctx context.Context) int {
	return jwt.SHA256HashSize
}

// integralNumbers turns whole float64 claim values into int64. Sessions are
// stored as JSON, so numbers such as updated_at come back as float64, which
// go-jose would write in exponent form (1.7e+09); OpenID Connect expects
// whole seconds.
func integralNumbers(claims jwt.MapClaims) {
	for name, value := range claims {
		if f, ok := value.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			claims[name] = int64(f)
		}
	}
}

// SignJWT signs claims with the active key of algorithm, RS256 when empty,
// and returns the compact JWT. header adds header fields such as typ. It
// signs back-channel logout tokens.
func (k *KeySet) SignJWT(ctx context.Context, algorithm string, claims map[string]any, header map[string]any) (string, error) {
	if algorithm == "" {
		algorithm = AlgRS256
	}
	if algorithm != AlgRS256 && algorithm != AlgES256 {
		return "", fmt.Errorf("signing algorithm %q is not supported", algorithm)
	}
	signer := &tokenSigner{keys: k, algorithm: algorithm}
	raw, _, err := signer.Generate(ctx, jwt.MapClaims(claims), &jwt.Headers{Extra: header})
	return raw, err
}
