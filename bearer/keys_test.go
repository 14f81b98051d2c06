package bearer_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/bearer"
)

func TestKeysFetchedOnceAtStart(t *testing.T) {
	f := newTokenFixture(t)

	for range 20 {
		if _, err := f.verifier.Verify(context.Background(), sign(t, f.ecKey, f.claims())); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}

	if got := f.provider.discoveryFetches.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1", got)
	}
	if got := f.provider.jwksFetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
}

func TestKeyRotationPickedUp(t *testing.T) {
	f := newTokenFixture(t)
	rotated := newECKey(t, "ec-2")
	f.provider.publish(t, f.ecKey, rotated, f.rsaKey)
	f.clock.Advance(bearer.DefaultMinRefreshInterval)

	claims, err := f.verifier.Verify(context.Background(), sign(t, rotated, f.claims()))
	if err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if claims.Subject != "user-1" {
		t.Errorf("Subject = %q, want user-1", claims.Subject)
	}
	if _, err := f.verifier.Verify(context.Background(), sign(t, f.ecKey, f.claims())); err != nil {
		t.Errorf("token signed with the previous key, still published: %v", err)
	}
	if got := f.provider.jwksFetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2", got)
	}
	if got := f.provider.discoveryFetches.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1: the jwks_uri is cached", got)
	}
}

func TestUnknownKidWithinIntervalNotFetched(t *testing.T) {
	f := newTokenFixture(t)
	rotated := newECKey(t, "ec-2")
	f.provider.publish(t, f.ecKey, rotated)
	f.clock.Advance(bearer.DefaultMinRefreshInterval - time.Second)

	_, err := f.verifier.Verify(context.Background(), sign(t, rotated, f.claims()))

	if !errors.Is(err, bearer.ErrInvalidToken) {
		t.Errorf("error = %v, want ErrInvalidToken while refetching is not allowed yet", err)
	}
	if got := f.provider.jwksFetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1", got)
	}
}

func TestUnknownKidFloodRateLimited(t *testing.T) {
	f := newTokenFixture(t)
	engine := newEngine(f.verifier)
	randomKidToken := func() string {
		return signJWT(t, jose.ES256, f.ecKey.private, accessTokenHeader(rand.Text()), f.claims())
	}
	tokens := make([]string, 100)
	for i := range tokens {
		tokens[i] = randomKidToken()
	}

	for round := int64(1); round <= 3; round++ {
		f.clock.Advance(bearer.DefaultMinRefreshInterval)

		var wg sync.WaitGroup
		statuses := make([]int, len(tokens))
		for i, token := range tokens {
			wg.Go(func() {
				statuses[i] = get(t, engine, "/resource", "Bearer "+token).status
			})
		}
		wg.Wait()

		for i, status := range statuses {
			if status != http.StatusUnauthorized {
				t.Fatalf("round %d, token %d: status %d, want 401", round, i, status)
			}
		}
		if got, want := f.provider.jwksFetches.Load(), 1+round; got != want {
			t.Errorf("after round %d: JWKS fetched %d times, want %d", round, got, want)
		}
	}

	if _, err := f.verifier.Verify(context.Background(), sign(t, f.ecKey, f.claims())); err != nil {
		t.Errorf("valid token after the flood: %v", err)
	}
}

func TestConcurrentUnknownKidFetchesOnce(t *testing.T) {
	f := newTokenFixture(t)
	rotated := newECKey(t, "ec-2")
	f.provider.publish(t, f.ecKey, rotated)
	f.clock.Advance(bearer.DefaultMinRefreshInterval)
	token := sign(t, rotated, f.claims())

	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = f.verifier.Verify(context.Background(), token)
		})
	}
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if got := f.provider.jwksFetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (start and one refetch)", got)
	}
}

func TestProviderDownCachedKeysWork(t *testing.T) {
	f := newTokenFixture(t)
	f.provider.failing.Store(true)
	f.clock.Advance(bearer.DefaultMinRefreshInterval)
	engine := newEngine(f.verifier)

	r := get(t, engine, "/resource", "Bearer "+sign(t, f.ecKey, f.claims()))
	if r.status != http.StatusOK {
		t.Errorf("token with a cached key: status %d, want 200; body %s", r.status, r.rawBody)
	}

	unknown := signJWT(t, jose.ES256, f.ecKey.private, accessTokenHeader("ec-new"), f.claims())
	r = get(t, engine, "/resource", "Bearer "+unknown)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("unknown kid while the provider is down: status %d, want 503; body %s", r.status, r.rawBody)
	}
}

func TestNoKeysGives503(t *testing.T) {
	key := newECKey(t, "ec-1")
	provider := newFakeProvider(t, key)
	provider.failing.Store(true)
	clock := newTestClock()
	v := newVerifier(t, provider, clock)
	engine := newEngine(v)
	token := sign(t, key, validClaims(provider.issuer, clock.Now()))

	r := get(t, engine, "/resource", "Bearer "+token)

	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", r.status, r.rawBody)
	}
	if r.challenge != "" {
		t.Errorf("WWW-Authenticate = %q, want none on 503", r.challenge)
	}
	if got := r.header.Get("Content-Type"); got != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", got)
	}
	if r.body["status"] != float64(http.StatusServiceUnavailable) {
		t.Errorf("problem status = %v, want 503", r.body["status"])
	}
	if got := r.header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After = %q, want 10", got)
	}
	if got := provider.discoveryFetches.Load(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1: a retry within the interval is not allowed", got)
	}
}

func TestKeysFetchedAfterProviderRecovers(t *testing.T) {
	key := newECKey(t, "ec-1")
	provider := newFakeProvider(t, key)
	provider.failing.Store(true)
	clock := newTestClock()
	v := newVerifier(t, provider, clock)

	if err := v.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh succeeded while the provider is down")
	}
	_, err := v.Verify(context.Background(), sign(t, key, validClaims(provider.issuer, clock.Now())))
	if !errors.Is(err, bearer.ErrUnavailable) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}

	provider.failing.Store(false)
	clock.Advance(bearer.DefaultMinRefreshInterval)

	if _, err := v.Verify(context.Background(), sign(t, key, validClaims(provider.issuer, clock.Now()))); err != nil {
		t.Errorf("verify after the provider recovered: %v", err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Errorf("Refresh after the provider recovered: %v", err)
	}
}

func TestStaleKeysRefreshedInBackground(t *testing.T) {
	f := newTokenFixture(t)
	f.provider.publish(t, f.rsaKey) // ec-1 is removed from the JWKS
	f.clock.Advance(bearer.DefaultKeyMaxAge + time.Second)

	if _, err := f.verifier.Verify(context.Background(), sign(t, f.ecKey, f.claims())); err != nil {
		t.Fatalf("stale but cached key: %v", err)
	}
	waitFor(t, func() bool { return f.provider.jwksFetches.Load() == 2 })
	if err := f.verifier.Refresh(context.Background()); err != nil {
		t.Fatalf("background refresh: %v", err)
	}

	_, err := f.verifier.Verify(context.Background(), sign(t, f.ecKey, f.claims()))
	if !errors.Is(err, bearer.ErrInvalidToken) {
		t.Errorf("token signed with a key removed from the JWKS: error %v, want ErrInvalidToken", err)
	}
}

// waitFor polls condition for up to five seconds.
func waitFor(t *testing.T, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	key := newECKey(t, "ec-1")
	provider := newFakeProvider(t, key)
	provider.discoveryIssuer.Store("https://impostor.test")
	v := newVerifier(t, provider, newTestClock())

	err := v.Refresh(context.Background())

	if err == nil || !strings.Contains(err.Error(), "impostor.test") {
		t.Errorf("Refresh error = %v, want one naming the discovered issuer", err)
	}
	if got := provider.jwksFetches.Load(); got != 0 {
		t.Errorf("JWKS fetched %d times, want 0", got)
	}
}

func TestJWKSURLSkipsDiscovery(t *testing.T) {
	key := newECKey(t, "ec-1")
	provider := newFakeProvider(t, key)
	clock := newTestClock()
	v := newVerifier(t, provider, clock, func(cfg *bearer.Config) {
		cfg.JWKSURL = provider.issuer + "/.well-known/jwks.json"
	})

	if _, err := v.Verify(context.Background(), sign(t, key, validClaims(provider.issuer, clock.Now()))); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got := provider.discoveryFetches.Load(); got != 0 {
		t.Errorf("discovery fetched %d times, want 0", got)
	}
}

func TestUnusableJWKSEntriesSkipped(t *testing.T) {
	key := newECKey(t, "ec-1")
	provider := newFakeProvider(t)
	provider.publishRaw([]byte(`{"keys":[
		{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","alg":"HS256"},
		{"kty":"unknown","kid":"strange"},
		` + mustJSON(t, jose.JSONWebKey{Key: key.private.Public(), KeyID: "enc", Use: "enc"}) + `,
		` + mustJSON(t, key.publicJWK()) + `
	]}`))
	clock := newTestClock()
	v := newVerifier(t, provider, clock)

	if err := v.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := v.Verify(context.Background(), sign(t, key, validClaims(provider.issuer, clock.Now()))); err != nil {
		t.Errorf("token signed with the usable key: %v", err)
	}

	hmacToken := signJWT(t, jose.HS256, []byte("secret-secret-secret-secret-secret"), accessTokenHeader("hmac"), validClaims(provider.issuer, clock.Now()))
	if _, err := v.Verify(context.Background(), hmacToken); !errors.Is(err, bearer.ErrInvalidToken) {
		t.Errorf("HS256 token naming the oct key: error %v, want ErrInvalidToken", err)
	}
	encToken := signJWT(t, jose.ES256, key.private, accessTokenHeader("enc"), validClaims(provider.issuer, clock.Now()))
	if _, err := v.Verify(context.Background(), encToken); !errors.Is(err, bearer.ErrInvalidToken) {
		t.Errorf("token naming an encryption key: error %v, want ErrInvalidToken", err)
	}
}

func TestEmptyJWKSKeepsCachedKeys(t *testing.T) {
	f := newTokenFixture(t)
	f.provider.publishRaw([]byte(`{"keys":[]}`))
	f.clock.Advance(bearer.DefaultMinRefreshInterval)

	if err := f.verifier.Refresh(context.Background()); err == nil {
		t.Error("Refresh accepted a JWKS with no keys")
	}
	if _, err := f.verifier.Verify(context.Background(), sign(t, f.ecKey, f.claims())); err != nil {
		t.Errorf("token with a cached key after an empty JWKS: %v", err)
	}
}

func mustJSON(t *testing.T, value any) string {
	t.Helper()
	encoded, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return string(encoded)
}
