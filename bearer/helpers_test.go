package bearer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/bearer"
)

const testAudience = "https://api.latchkey.test"

func init() {
	gin.SetMode(gin.TestMode)
}

// signingKey is a private key the fake provider publishes, or one a test
// signs with without publishing it.
type signingKey struct {
	kid       string
	algorithm jose.SignatureAlgorithm
	private   crypto.Signer
}

func newECKey(t testing.TB, kid string) signingKey {
	t.Helper()
	private, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, algorithm: jose.ES256, private: private}
}

func newRSAKey(t testing.TB, kid string) signingKey {
	t.Helper()
	private, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, algorithm: jose.RS256, private: private}
}

// publicJWK returns the key as its JWKS entry.
func (k signingKey) publicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.private.Public(), KeyID: k.kid, Algorithm: string(k.algorithm), Use: "sig"}
}

// fakeProvider serves a discovery document and a JWKS and counts how often
// each is fetched.
type fakeProvider struct {
	server *httptest.Server
	issuer string

	mu   sync.Mutex
	jwks []byte

	discoveryFetches atomic.Int64
	jwksFetches      atomic.Int64
	// failing makes both endpoints respond with 500.
	failing atomic.Bool
	// discoveryIssuer, when set, replaces the issuer in the discovery document.
	discoveryIssuer atomic.Value
}

func newFakeProvider(t testing.TB, keys ...signingKey) *fakeProvider {
	t.Helper()
	p := &fakeProvider{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discoveryFetches.Add(1)
		if p.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		issuer := p.issuer
		if override, ok := p.discoveryIssuer.Load().(string); ok {
			issuer = override
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":   issuer,
			"jwks_uri": p.issuer + "/.well-known/jwks.json",
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		p.jwksFetches.Add(1)
		if p.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		p.mu.Lock()
		body := p.jwks
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	p.server = httptest.NewServer(mux)
	t.Cleanup(p.server.Close)
	p.issuer = p.server.URL
	p.publish(t, keys...)
	return p
}

// publish replaces the published JWKS with the public halves of keys.
func (p *fakeProvider) publish(t testing.TB, keys ...signingKey) {
	t.Helper()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, key := range keys {
		set.Keys = append(set.Keys, key.publicJWK())
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	p.publishRaw(body)
}

// publishRaw replaces the published JWKS document.
func (p *fakeProvider) publishRaw(body []byte) {
	p.mu.Lock()
	p.jwks = body
	p.mu.Unlock()
}

// testClock is a clock that tests move forward by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Now().Truncate(time.Second)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newVerifier builds a verifier for p's issuer and testAudience that reads
// time from clock.
func newVerifier(t testing.TB, p *fakeProvider, clock *testClock, configure ...func(*bearer.Config)) *bearer.Verifier {
	t.Helper()
	cfg := bearer.Config{
		Issuer:     p.issuer,
		Audience:   testAudience,
		HTTPClient: p.server.Client(),
		Now:        clock.Now,
		Logger:     discardLogger(),
	}
	for _, f := range configure {
		f(&cfg)
	}
	v, err := bearer.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("new verifier: %v", err)
	}
	return v
}

// validClaims returns the claims of a valid token issued at now.
func validClaims(issuer string, now time.Time) map[string]any {
	return map[string]any{
		"iss":       issuer,
		"sub":       "user-1",
		"aud":       []string{testAudience},
		"client_id": "client-1",
		"scope":     "openid api:read",
		"exp":       now.Add(time.Hour).Unix(),
		"iat":       now.Unix(),
		"jti":       rand.Text(),
		"auth_time": now.Add(-time.Minute).Unix(),
		"sid":       "session-1",
		"roles":     []string{"admin"},
	}
}

// accessTokenHeader is the header the provider sets: typ at+jwt and kid.
func accessTokenHeader(kid string) map[jose.HeaderKey]any {
	return map[jose.HeaderKey]any{jose.HeaderType: "at+jwt", "kid": kid}
}

// signJWT signs claims with key under algorithm, with exactly the extra
// header parameters given. key may be any key go-jose signs with, HMAC
// secrets included.
func signJWT(t testing.TB, algorithm jose.SignatureAlgorithm, key any, header map[jose.HeaderKey]any, claims map[string]any) string {
	t.Helper()
	options := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	for name, value := range header {
		options.ExtraHeaders[name] = value
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: algorithm, Key: key}, options)
	if err != nil {
		t.Fatalf("new signer: %v", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	compact, err := signed.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return compact
}

// sign signs claims as the provider would with key.
func sign(t testing.TB, key signingKey, claims map[string]any) string {
	t.Helper()
	return signJWT(t, key.algorithm, key.private, accessTokenHeader(key.kid), claims)
}

// unsignedJWT builds a token with alg "none" and an empty signature, which
// go-jose refuses to produce.
func unsignedJWT(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	header, _ := json.Marshal(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid})
	payload, _ := json.Marshal(claims)
	return encodeSegment(header) + "." + encodeSegment(payload) + "."
}

func encodeSegment(b []byte) string {
	return base64.RawURLEncoding.EncodeToString(b)
}

// replacePayload swaps a compact JWS's payload and keeps its signature.
func replacePayload(t testing.TB, token string, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	payload, _ := json.Marshal(claims)
	parts[1] = encodeSegment(payload)
	return strings.Join(parts, ".")
}

// response is a recorded response of a test engine.
type response struct {
	status    int
	challenge string
	header    http.Header
	body      map[string]any
	rawBody   string
}

// newEngine returns a gin engine that serves GET /resource behind
// v.Middleware(scopes...). Its handler writes the verified claims as JSON.
func newEngine(v *bearer.Verifier, scopes ...string) *gin.Engine {
	engine := gin.New()
	engine.GET("/resource", v.Middleware(scopes...), func(c *gin.Context) {
		claims, ok := bearer.ClaimsFrom(c)
		if !ok {
			c.JSON(http.StatusInternalServerError, gin.H{"detail": "no claims in the context"})
			return
		}
		c.JSON(http.StatusOK, gin.H{
			"sub":        claims.Subject,
			"client_id":  claims.ClientID,
			"scopes":     claims.Scopes,
			"aud":        claims.Audience,
			"sid":        claims.SessionID,
			"auth_time":  claims.AuthTime.Unix(),
			"iat":        claims.IssuedAt.Unix(),
			"exp":        claims.ExpiresAt.Unix(),
			"jti":        claims.JWTID,
			"roles":      claims.Raw["roles"],
			"iss":        claims.Issuer,
			"has_scopes": claims.HasScope("api:read"),
		})
	})
	return engine
}

// get sends GET target to engine with the given Authorization header
// values.
func get(t testing.TB, engine http.Handler, target string, authorization ...string) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for _, value := range authorization {
		req.Header.Add("Authorization", value)
	}
	recorder := httptest.NewRecorder()
	engine.ServeHTTP(recorder, req)

	r := response{
		status:    recorder.Code,
		challenge: recorder.Header().Get("WWW-Authenticate"),
		header:    recorder.Header(),
		rawBody:   recorder.Body.String(),
	}
	if recorder.Body.Len() > 0 {
		if err := json.Unmarshal(recorder.Body.Bytes(), &r.body); err != nil {
			t.Fatalf("body is not JSON (%d): %s", recorder.Code, recorder.Body.String())
		}
	}
	return r
}

// challengeError returns the error parameter of a Bearer challenge, or ""
// when it has none.
func challengeError(challenge string) string {
	_, rest, found := strings.Cut(challenge, `error="`)
	if !found {
		return ""
	}
	value, _, _ := strings.Cut(rest, `"`)
	return value
}
