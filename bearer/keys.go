package bearer

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxDocumentBytes limits the discovery document and the JWKS.
const maxDocumentBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted, as RFC 7518 §3.3
// requires for RS256 and the other RSA algorithms.
const minRSABits = 2048

// verificationKey is one usable public key of the JWKS.
type verificationKey struct {
	kid string
	// algorithm is the JWK's alg, or empty when the JWK names none.
	algorithm string
	public    any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// fits reports whether a token signed with algorithm may be verified with
// this key: the JWK's alg, when it has one, must be algorithm, and the key
// type and curve must be the ones algorithm uses. This is what stops a token
// from choosing how its key is used.
func (k *verificationKey) fits(algorithm string) bool {
	if k.algorithm != "" && k.algorithm != algorithm {
		return false
	}
	return keyFitsAlgorithm(k.public, algorithm)
}

func keyFitsAlgorithm(key any, algorithm string) bool {
	switch jose.SignatureAlgorithm(algorithm) {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		rsaKey, ok := key.(*rsa.PublicKey)
		return ok && rsaKey.N.BitLen() >= minRSABits
	case jose.ES256:
		return hasCurve(key, elliptic.P256())
	case jose.ES384:
		return hasCurve(key, elliptic.P384())
	case jose.ES512:
		return hasCurve(key, elliptic.P521())
	case jose.EdDSA:
		_, ok := key.(ed25519.PublicKey)
		return ok
	default:
		return false
	}
}

func hasCurve(key any, curve elliptic.Curve) bool {
	ecKey, ok := key.(*ecdsa.PublicKey)
	return ok && ecKey.Curve == curve
}

// keySet is one fetched JWKS, never modified after it is stored.
type keySet struct {
	byKID     map[string]*verificationKey
	fetchedAt time.Time
}

// keyCache holds the provider's keys. Requests read the current set without
// locking. Fetches run one at a time in their own goroutine, at most one per
// minInterval, and requests that need a fetch wait for it.
type keyCache struct {
	issuer      string
	jwksURL     string // from Config.JWKSURL, or from discovery once it succeeds
	algorithms  map[string]bool
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration
	allowHTTP   bool
	logger      *slog.Logger

	current atomic.Pointer[keySet] // nil until the first fetch succeeds

	mu          sync.Mutex
	inflight    chan struct{} // closed when the running fetch ends
	lastAttempt time.Time
	lastErr     error // the last fetch's error, nil after a success
}

// fetchTimeout bounds one fetch of the discovery document and the JWKS,
// whatever HTTPClient's own timeout is. A fetch outlives the request that
// started it, so that request's cancellation does not cut it short.
const fetchTimeout = 15 * time.Second

// lookup returns the key named kid. An unknown kid starts a fetch unless one
// ran within minInterval. The error wraps ErrUnavailable when the keys could
// not be fetched, and ErrInvalidToken when they were and kid is not among
// them.
func (c *keyCache) lookup(ctx context.Context, kid string) (*verificationKey, error) {
	if set := c.current.Load(); set != nil {
		if key, ok := set.byKID[kid]; ok {
			if c.now().Sub(set.fetchedAt) > c.maxAge {
				c.startFetch()
			}
			return key, nil
		}
	}

	if done := c.startFetch(); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for the signing keys: %v", ErrUnavailable, ctx.Err())
		}
	}

	if set := c.current.Load(); set != nil {
		if key, ok := set.byKID[kid]; ok {
			return key, nil
		}
	}
	c.mu.Lock()
	lastErr := c.lastErr
	c.mu.Unlock()
	if lastErr != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, lastErr)
	}
	return nil, reject("The access token is signed with an unknown key.", nil)
}

// startFetch starts a fetch unless one is running or one started within
// minInterval. It returns a channel that is closed when the running or new
// fetch ends, or nil when no fetch is running.
func (c *keyCache) startFetch() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.inflight != nil {
		return c.inflight
	}
	now := c.now()
	if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minInterval {
		return nil
	}

	c.lastAttempt = now
	done := make(chan struct{})
	c.inflight = done
	go c.fetchAndStore(done)
	return done
}

// fetchAndStore fetches the keys, replaces the cached set on success and
// keeps it on failure.
func (c *keyCache) fetchAndStore(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()

	set, err := c.fetch(ctx)
	if err != nil {
		c.logger.ErrorContext(ctx, "signing key fetch failed", "issuer", c.issuer, "error", err)
	} else {
		c.current.Store(set)
		c.logger.InfoContext(ctx, "signing keys loaded", "issuer", c.issuer, "keys", len(set.byKID))
	}

	c.mu.Lock()
	c.lastErr = err
	c.inflight = nil
	close(done)
	c.mu.Unlock()
}

// fetch discovers the JWKS URL, unless it is known, and reads the keys.
// Only fetchAndStore calls it, one call at a time, so jwksURL needs no lock.
func (c *keyCache) fetch(ctx context.Context) (*keySet, error) {
	if c.jwksURL == "" {
		jwksURL, err := c.discover(ctx)
		if err != nil {
			return nil, err
		}
		c.jwksURL = jwksURL
	}

	body, err := c.get(ctx, c.jwksURL)
	if err != nil {
		return nil, err
	}
	byKID, err := parseJWKS(body, c.algorithms)
	if err != nil {
		return nil, fmt.Errorf("JWKS at %s: %w", c.jwksURL, err)
	}
	return &keySet{byKID: byKID, fetchedAt: c.now()}, nil
}

// discover reads the jwks_uri of the issuer's OpenID Connect Discovery 1.0
// document, whose issuer must equal the configured one (§4.3).
func (c *keyCache) discover(ctx context.Context) (string, error) {
	discoveryURL := c.issuer + "/.well-known/openid-configuration"
	body, err := c.get(ctx, discoveryURL)
	if err != nil {
		return "", err
	}

	var metadata struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &metadata); err != nil {
		return "", fmt.Errorf("parse discovery document at %s: %w", discoveryURL, err)
	}
	if metadata.Issuer != c.issuer {
		return "", fmt.Errorf("discovery document at %s names issuer %q, not the configured %q", discoveryURL, metadata.Issuer, c.issuer)
	}
	if metadata.JWKSURI == "" {
		return "", fmt.Errorf("discovery document at %s has no jwks_uri", discoveryURL)
	}
	if err := checkURL("jwks_uri", metadata.JWKSURI, c.allowHTTP); err != nil {
		return "", fmt.Errorf("discovery document at %s: %w", discoveryURL, err)
	}
	return metadata.JWKSURI, nil
}

func (c *keyCache) get(ctx context.Context, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")

	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", target, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", target, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", target, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("GET %s: body is larger than %d bytes", target, maxDocumentBytes)
	}
	return body, nil
}

// parseJWKS returns the usable keys of a JWKS by kid. It skips the keys it
// cannot use rather than failing the whole set. Those are keys without kid,
// keys not for signatures, private or symmetric keys, keys whose alg is not
// allowed or does not fit their type, and later keys that repeat a kid. A
// set with no usable key is an error, so that a broken response never
// replaces working keys.
func parseJWKS(body []byte, algorithms map[string]bool) (map[string]*verificationKey, error) {
	var document struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &document); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}

	byKID := make(map[string]*verificationKey, len(document.Keys))
	for _, raw := range document.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue
		}
		if jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		switch jwk.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			continue
		}
		if jwk.Algorithm != "" && (!algorithms[jwk.Algorithm] || !keyFitsAlgorithm(jwk.Key, jwk.Algorithm)) {
			continue
		}
		if _, seen := byKID[jwk.KeyID]; seen {
			continue
		}
		byKID[jwk.KeyID] = &verificationKey{kid: jwk.KeyID, algorithm: jwk.Algorithm, public: jwk.Key}
	}

	if len(byKID) == 0 {
		return nil, errors.New("no usable signing key: each needs a kid, a public RSA, EC or Ed25519 key, and an allowed alg if it names one")
	}
	return byKID, nil
}
