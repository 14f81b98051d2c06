package bearer_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// realProvider is Latchkey's provider served on a loopback port, backed by
// a SQLite file and in-memory login sessions.
type realProvider struct {
	issuer string
	store  *storage.Store
	keys   *provider.KeySet
	secret []byte
}

func startRealProvider(t *testing.T) *realProvider {
	t.Helper()
	ctx := context.Background()

	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate database: %v", err)
	}
	store := storage.NewStore(db)

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys, err := provider.NewKeySet(store, secret)
	if err == nil {
		// The test rotates a key and expects the new one to sign at once.
		keys.SetActivationDelay(0)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.EnsureActive(ctx, time.Hour, provider.AlgRS256, provider.AlgES256); err != nil {
		t.Fatalf("create signing keys: %v", err)
	}

	listener := testsupport.Listen(t)
	issuer := "http://" + listener.Addr().String()
	p, err := provider.New(provider.Config{Issuer: issuer, SystemSecret: secret, Logger: discardLogger()},
		store, storage.NewMemorySessionStore(), keys)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}

	testsupport.Serve(t, listener, p.Handler())

	return &realProvider{issuer: issuer, store: store, keys: keys, secret: secret}
}

// createClient registers a confidential client_credentials client that may
// request the api:read scope and the given audiences, and returns its id and
// secret.
func (p *realProvider) createClient(t *testing.T, audience ...string) (string, string) {
	t.Helper()
	client := &storage.Client{
		ID:                       "resource-test-" + strings.ToLower(rand.Text()[:8]),
		Name:                     "Resource server test",
		RedirectURIs:             []string{testsupport.CallbackURL},
		GrantTypes:               []string{"client_credentials"},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"api:read"},
		Audience:                 audience,
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: provider.AlgRS256,
	}
	secret := testsupport.CreateClient(t, p.store, p.secret, client)
	return client.ID, secret
}

// clientCredentialsToken gets an access token from the token endpoint.
func (p *realProvider) clientCredentialsToken(t *testing.T, clientID, secret string, form url.Values) string {
	t.Helper()
	form.Set("grant_type", "client_credentials")
	req, err := http.NewRequest(http.MethodPost, p.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint status %d: %s", resp.StatusCode, body)
	}
	var decoded struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("token response is not JSON: %s", body)
	}
	if !strings.EqualFold(decoded.TokenType, "bearer") {
		t.Errorf("token_type = %q, want bearer", decoded.TokenType)
	}
	return decoded.AccessToken
}

// tokenHeader decodes a compact JWS's header without verifying anything.
func tokenHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	segment, _, _ := strings.Cut(token, ".")
	decoded, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		t.Fatalf("decode header: %v", err)
	}
	var header map[string]any
	if err := json.Unmarshal(decoded, &header); err != nil {
		t.Fatalf("parse header: %v", err)
	}
	return header
}

func TestRealProviderTokens(t *testing.T) {
	ctx := context.Background()
	real := startRealProvider(t)

	// The clock runs ahead of the real one by offset, so that the test can
	// pass MinRefreshInterval without sleeping.
	var offset atomic.Int64
	v, err := bearer.New(ctx, bearer.Config{
		Issuer:   real.issuer,
		Audience: testAudience,
		Now:      func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
		Logger:   discardLogger(),
	})
	if err != nil {
		t.Fatalf("new verifier: %v", err)
	}
	if err := v.Refresh(ctx); err != nil {
		t.Fatalf("fetch the provider's keys: %v", err)
	}
	engine := newEngine(v, "api:read")
	clientID, secret := real.createClient(t, testAudience)

	t.Run("client credentials token passes the middleware", func(t *testing.T) {
		token := real.clientCredentialsToken(t, clientID, secret, url.Values{"scope": {"api:read"}, "audience": {testAudience}})

		r := get(t, engine, "/resource", "Bearer "+token)

		if r.status != http.StatusOK {
			t.Fatalf("status = %d, want 200; body %s", r.status, r.rawBody)
		}
		if r.body["sub"] != clientID {
			t.Errorf("sub = %v, want the client id %s", r.body["sub"], clientID)
		}
		if r.body["client_id"] != clientID {
			t.Errorf("client_id = %v, want %s", r.body["client_id"], clientID)
		}
		if r.body["iss"] != real.issuer {
			t.Errorf("iss = %v, want %s", r.body["iss"], real.issuer)
		}
		if !equalStrings(r.body["scopes"], "api:read") {
			t.Errorf("scopes = %v, want [api:read]", r.body["scopes"])
		}
		if !equalStrings(r.body["aud"], testAudience) {
			t.Errorf("aud = %v, want [%s]", r.body["aud"], testAudience)
		}
		if r.body["sid"] != "" {
			t.Errorf("sid = %v, want none for client credentials", r.body["sid"])
		}
		if jti, _ := r.body["jti"].(string); jti == "" {
			t.Error("jti is empty")
		}
		header := tokenHeader(t, token)
		if header["typ"] != "at+jwt" || header["alg"] != "ES256" || header["kid"] == "" {
			t.Errorf("header = %v, want typ at+jwt, alg ES256 and a kid", header)
		}
	})

	t.Run("token for the default audience is rejected", func(t *testing.T) {
		token := real.clientCredentialsToken(t, clientID, secret, url.Values{"scope": {"api:read"}})

		r := get(t, engine, "/resource", "Bearer "+token)

		if r.status != http.StatusUnauthorized || challengeError(r.challenge) != "invalid_token" {
			t.Errorf("status = %d, challenge %q; want 401 invalid_token for aud = issuer", r.status, r.challenge)
		}
		claims, err := verifierFor(t, real.issuer, real.issuer).Verify(ctx, token)
		if err != nil {
			t.Fatalf("verify with the issuer as audience: %v", err)
		}
		if len(claims.Audience) != 1 || claims.Audience[0] != real.issuer {
			t.Errorf("aud = %v, want [%s]", claims.Audience, real.issuer)
		}
	})

	t.Run("rotated key verifies without a new verifier", func(t *testing.T) {
		before := real.clientCredentialsToken(t, clientID, secret, url.Values{"scope": {"api:read"}, "audience": {testAudience}})
		if _, err := real.keys.Rotate(ctx, provider.AlgES256, time.Hour); err != nil {
			t.Fatalf("rotate: %v", err)
		}
		after := real.clientCredentialsToken(t, clientID, secret, url.Values{"scope": {"api:read"}, "audience": {testAudience}})
		if tokenHeader(t, before)["kid"] == tokenHeader(t, after)["kid"] {
			t.Fatal("the token after rotation has the old kid")
		}
		offset.Add(int64(bearer.DefaultMinRefreshInterval))

		r := get(t, engine, "/resource", "Bearer "+after)
		if r.status != http.StatusOK {
			t.Errorf("token signed with the rotated key: status %d; body %s", r.status, r.rawBody)
		}
		r = get(t, engine, "/resource", "Bearer "+before)
		if r.status != http.StatusOK {
			t.Errorf("token signed with the previous key: status %d; body %s", r.status, r.rawBody)
		}
	})
}

// verifierFor builds a verifier of issuer for audience.
func verifierFor(t *testing.T, issuer, audience string) *bearer.Verifier {
	t.Helper()
	v, err := bearer.New(context.Background(), bearer.Config{Issuer: issuer, Audience: audience, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
