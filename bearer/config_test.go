package bearer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/bearer"
)

func TestNewRejectsInvalidConfig(t *testing.T) {
	valid := func() bearer.Config {
		return bearer.Config{Issuer: "https://id.latchkey.test", Audience: testAudience, JWKSURL: "http://127.0.0.1:1/jwks", Logger: discardLogger()}
	}
	tests := []struct {
		name      string
		change    func(*bearer.Config)
		wantInErr string
	}{
		{name: "missing issuer", change: func(c *bearer.Config) { c.Issuer = "" }, wantInErr: "missing issuer"},
		{name: "relative issuer", change: func(c *bearer.Config) { c.Issuer = "id.latchkey.test" }, wantInErr: "not an absolute URL"},
		{name: "http issuer on a remote host", change: func(c *bearer.Config) { c.Issuer = "http://id.latchkey.test" }, wantInErr: "non-loopback"},
		{name: "issuer with a query", change: func(c *bearer.Config) { c.Issuer = "https://id.latchkey.test?x=1" }, wantInErr: "query or fragment"},
		{name: "http JWKS URL on a remote host", change: func(c *bearer.Config) { c.JWKSURL = "http://provider:3001/jwks" }, wantInErr: "non-loopback"},
		{name: "missing audience", change: func(c *bearer.Config) { c.Audience = "" }, wantInErr: "missing audience"},
		{name: "alg none", change: func(c *bearer.Config) { c.Algorithms = []string{"none"} }, wantInErr: `"none" is not accepted`},
		{name: "HMAC algorithm", change: func(c *bearer.Config) { c.Algorithms = []string{"ES256", "HS256"} }, wantInErr: `"HS256" is not accepted`},
		{name: "negative leeway", change: func(c *bearer.Config) { c.Leeway = -time.Second }, wantInErr: "leeway -1s is negative"},
		{name: "negative refresh interval", change: func(c *bearer.Config) { c.MinRefreshInterval = -time.Second }, wantInErr: "minimum refresh interval"},
		{name: "realm with a quote", change: func(c *bearer.Config) { c.Realm = `api"` }, wantInErr: "realm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.change(&cfg)

			v, err := bearer.New(context.Background(), cfg)

			if err == nil {
				t.Fatal("New accepted the configuration")
			}
			if v != nil {
				t.Error("New returned a verifier with its error")
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
		})
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := bearer.New(context.Background(), bearer.Config{Algorithms: []string{"HS512"}, Leeway: -time.Second})
	if err == nil {
		t.Fatal("New accepted an empty configuration")
	}
	for _, want := range []string{"missing issuer", "missing audience", `"HS512"`, "leeway"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNewAllowsInsecureHTTPWhenSet(t *testing.T) {
	key := newECKey(t, "ec-1")
	provider := newFakeProvider(t, key)
	clock := newTestClock()
	issuer := "http://provider.internal:3001"

	v, err := bearer.New(context.Background(), bearer.Config{
		Issuer:            issuer,
		Audience:          testAudience,
		JWKSURL:           provider.issuer + "/.well-known/jwks.json",
		AllowInsecureHTTP: true,
		HTTPClient:        provider.server.Client(),
		Now:               clock.Now,
		Logger:            discardLogger(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := v.Verify(context.Background(), sign(t, key, validClaims(issuer, clock.Now()))); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestIssuerTrailingSlashIgnored(t *testing.T) {
	key := newECKey(t, "ec-1")
	provider := newFakeProvider(t, key)
	clock := newTestClock()
	v := newVerifier(t, provider, clock, func(cfg *bearer.Config) { cfg.Issuer = provider.issuer + "/" })

	if _, err := v.Verify(context.Background(), sign(t, key, validClaims(provider.issuer, clock.Now()))); err != nil {
		t.Errorf("verify: %v", err)
	}
}
