package bearer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var (
	// ErrInvalidToken is wrapped by every error Verify returns for a token
	// that must be rejected (RFC 6750 invalid_token).
	ErrInvalidToken = errors.New("invalid access token")

	// ErrUnavailable is wrapped by Verify's errors when a token could not be
	// checked: the keys could not be fetched, or SessionCheck failed with an
	// error that wraps ErrUnavailable. The middleware responds with 503.
	ErrUnavailable = errors.New("access token verification unavailable")
)

// maxTokenBytes limits the tokens Verify parses. The provider's tokens are
// under 1 KiB; the limit leaves room for many extra claims.
const maxTokenBytes = 16 << 10

// rejection is the error for a token that must be rejected. Its
// description is written for the client and goes into error_description,
// so it never contains the token or a value taken from it.
type rejection struct {
	description string
	cause       error
}

func (r *rejection) Error() string {
	if r.cause != nil {
		return fmt.Sprintf("%s: %s %v", ErrInvalidToken, r.description, r.cause)
	}
	return fmt.Sprintf("%s: %s", ErrInvalidToken, r.description)
}

func (r *rejection) Unwrap() error { return r.cause }

func (r *rejection) Is(target error) bool { return target == ErrInvalidToken }

func reject(description string, cause error) error {
	return &rejection{description: description, cause: cause}
}

// Claims are the verified claims of an access token (RFC 9068 §2.2).
type Claims struct {
	Issuer   string
	Subject  string
	ClientID string
	Audience []string
	// Scopes are the space-separated values of the scope claim.
	Scopes []string
	// SessionID is the sid claim: the login session behind the token, empty
	// for tokens without a person (client credentials).
	SessionID string
	// AuthTime is when the person authenticated, zero when the token has no
	// auth_time.
	AuthTime  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time
	// NotBefore is zero when the token has no nbf.
	NotBefore time.Time
	JWTID     string
	// Raw contains every claim of the payload as decoded JSON, for claims
	// this struct has no field for, such as roles.
	Raw map[string]any
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool {
	return slices.Contains(c.Scopes, scope)
}

// payload is the JSON shape of the claims Verify reads.
type payload struct {
	jwt.Claims
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope"`
	SessionID string           `json:"sid"`
	AuthTime  *jwt.NumericDate `json:"auth_time"`
}

// Verifier verifies access tokens of one issuer for one audience. It is
// safe for concurrent use.
type Verifier struct {
	cfg        Config
	algorithms []jose.SignatureAlgorithm
	keys       *keyCache
}

// New validates cfg and fetches the provider's keys once, waiting for them
// no longer than ctx allows. A failed fetch does not fail New, so that a
// resource server may start before the provider. The verifier fetches again
// when a request needs a key, no sooner than cfg.MinRefreshInterval later,
// and until it has a key the middleware responds with 503. Call Refresh to
// learn whether the provider is reachable. New returns an error only for an
// invalid cfg, and that error lists every problem.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("invalid access token verifier configuration: %w", err)
	}

	allowed := make(map[string]bool, len(cfg.Algorithms))
	algorithms := make([]jose.SignatureAlgorithm, 0, len(cfg.Algorithms))
	for _, algorithm := range cfg.Algorithms {
		allowed[algorithm] = true
		algorithms = append(algorithms, jose.SignatureAlgorithm(algorithm))
	}

	v := &Verifier{
		cfg:        cfg,
		algorithms: algorithms,
		keys: &keyCache{
			issuer:      cfg.Issuer,
			jwksURL:     cfg.JWKSURL,
			algorithms:  allowed,
			client:      cfg.HTTPClient,
			now:         cfg.Now,
			minInterval: cfg.MinRefreshInterval,
			maxAge:      cfg.KeyMaxAge,
			allowHTTP:   cfg.AllowInsecureHTTP,
			logger:      cfg.Logger,
		},
	}

	done := v.keys.startFetch()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return v, nil
}

// Refresh fetches the keys now unless a fetch ran within
// MinRefreshInterval, waits for it, and returns the error of the latest
// fetch. It suits a start-up or readiness check that must know whether
// the provider's keys are reachable.
func (v *Verifier) Refresh(ctx context.Context) error {
	if done := v.keys.startFetch(); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	v.keys.mu.Lock()
	defer v.keys.mu.Unlock()
	return v.keys.lastErr
}

// Verify checks an access token as RFC 9068 §4 requires and returns its
// claims. It checks, in this order:
//
//   - the size, the JWS compact serialization and an allowed alg
//   - the typ header: at+jwt or application/at+jwt
//   - kid, its key, and that the key's type fits alg
//   - the signature
//   - the claims RFC 9068 §2.2 requires: iss, sub, aud, exp, iat, jti, client_id
//   - iss and aud against the configuration
//   - exp, nbf and iat against Now, allowing Leeway
//   - SessionCheck, for a token with sid
//
// Verify does not check scopes: Middleware and Claims.HasScope do.
//
// Every error wraps ErrInvalidToken or ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (*Claims, error) {
	if len(rawToken) > maxTokenBytes {
		return nil, reject("The access token is too large.", nil)
	}

	token, err := jwt.ParseSigned(rawToken, v.algorithms)
	if err != nil {
		return nil, reject("The access token is not a signed JWT with an accepted algorithm.", err)
	}
	if len(token.Headers) != 1 {
		return nil, reject("The access token must have exactly one signature.", nil)
	}
	header := token.Headers[0]

	if !isAccessTokenType(header.ExtraHeaders[jose.HeaderType]) {
		return nil, reject("The access token's typ header must be at+jwt.", nil)
	}
	if header.KeyID == "" {
		return nil, reject("The access token has no kid header.", nil)
	}

	key, err := v.keys.lookup(ctx, header.KeyID)
	if err != nil {
		return nil, err
	}
	if !key.fits(header.Algorithm) {
		return nil, reject("The access token's alg does not match its signing key.", nil)
	}

	var claims payload
	var raw map[string]any
	if err := token.Claims(key.public, &claims, &raw); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return nil, reject("The access token's signature is invalid.", nil)
		}
		return nil, reject("The access token's claims are malformed.", err)
	}

	if err := checkRequiredClaims(&claims); err != nil {
		return nil, err
	}
	if err := v.checkClaims(&claims); err != nil {
		return nil, err
	}

	if claims.SessionID != "" && v.cfg.SessionCheck != nil {
		if err := v.cfg.SessionCheck(ctx, claims.SessionID); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return nil, fmt.Errorf("check login session: %w", err)
			}
			return nil, reject("The login session of the access token has ended.", err)
		}
	}

	return newClaims(&claims, raw), nil
}

// isAccessTokenType reports whether a typ header names the RFC 9068 media
// type, with or without "application/". Media type names are
// case-insensitive (RFC 7515 §4.1.9).
func isAccessTokenType(typ any) bool {
	value, ok := typ.(string)
	return ok && (strings.EqualFold(value, "at+jwt") || strings.EqualFold(value, "application/at+jwt"))
}

// checkRequiredClaims rejects a token that lacks a claim RFC 9068 §2.2
// requires.
func checkRequiredClaims(claims *payload) error {
	required := []struct {
		name    string
		present bool
	}{
		{"iss", claims.Issuer != ""},
		{"sub", claims.Subject != ""},
		{"aud", len(claims.Audience) > 0},
		{"exp", claims.Expiry != nil},
		{"iat", claims.IssuedAt != nil},
		{"jti", claims.ID != ""},
		{"client_id", claims.ClientID != ""},
	}
	for _, claim := range required {
		if !claim.present {
			return reject("The access token has no "+claim.name+" claim.", nil)
		}
	}
	return nil
}

// checkClaims compares iss and aud with the configuration and the time
// claims with Now, allowing Leeway.
func (v *Verifier) checkClaims(claims *payload) error {
	expected := jwt.Expected{
		Issuer:      v.cfg.Issuer,
		AnyAudience: jwt.Audience{v.cfg.Audience},
		Time:        v.cfg.Now(),
	}
	err := claims.ValidateWithLeeway(expected, v.cfg.Leeway)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return reject("The access token was issued by another issuer.", nil)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return reject("The access token is not intended for this resource server.", nil)
	case errors.Is(err, jwt.ErrExpired):
		return reject("The access token has expired.", nil)
	case errors.Is(err, jwt.ErrNotValidYet):
		return reject("The access token is not valid yet.", nil)
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return reject("The access token's iat is in the future.", nil)
	default:
		return reject("The access token's claims are invalid.", err)
	}
}

func newClaims(p *payload, raw map[string]any) *Claims {
	claims := &Claims{
		Issuer:    p.Issuer,
		Subject:   p.Subject,
		ClientID:  p.ClientID,
		Audience:  []string(p.Audience),
		Scopes:    strings.Fields(p.Scope),
		SessionID: p.SessionID,
		IssuedAt:  p.IssuedAt.Time(),
		ExpiresAt: p.Expiry.Time(),
		JWTID:     p.ID,
		Raw:       raw,
	}
	if p.AuthTime != nil {
		claims.AuthTime = p.AuthTime.Time()
	}
	if p.NotBefore != nil {
		claims.NotBefore = p.NotBefore.Time()
	}
	return claims
}
