package provider_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testsupport"
)

// BenchmarkTokenClientCredentials measures the token endpoint for the
// client_credentials grant through the HTTP handler: client
// authentication, one JWT signature and one insert.
func BenchmarkTokenClientCredentials(b *testing.B) {
	env := newTestEnv(b)
	clientID, secret := env.createClient(b, clientSpec{})
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()

	b.ReportAllocs()
	for b.Loop() {
		serveToken(b, env, clientID, secret, body)
	}
}

// serveToken sends one token request straight to the handler, without a
// network round trip, and fails unless it succeeds.
func serveToken(b *testing.B, env *testEnv, clientID, secret, body string) {
	req := httptest.NewRequest(http.MethodPost, env.issuer+"/oauth2/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	rec := httptest.NewRecorder()
	env.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

// BenchmarkTokenCodeExchange measures the authorization_code exchange with
// PKCE through the HTTP handler: it signs an access token and an ID token.
// The codes are issued before the timer starts, by a signed-in browser.
func BenchmarkTokenCodeExchange(b *testing.B) {
	env := newTestEnv(b)
	clientID, secret := env.createClient(b, clientSpec{firstParty: true})
	_, password := env.createUser(b, "bench")
	browser := newBrowser(b)

	params := validAuthParams(clientID)
	params.Set("scope", "openid offline_access")
	verifier, challenge := pkcePair()
	params.Set("code_challenge", challenge)
	testsupport.CallbackParams(b, browser.Login(env.issuer, browser.Get(authURL(env, params)), "bench", password))

	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = testsupport.CallbackParams(b, browser.Get(authURL(env, params))).Get("code")
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := url.Values{
			"grant_type": {"authorization_code"}, "code": {codes[i]},
			"redirect_uri": {testsupport.CallbackURL}, "code_verifier": {verifier},
		}.Encode()
		serveToken(b, env, clientID, secret, body)
	}
}

// BenchmarkTokenClientCredentialsParallel is the client_credentials
// benchmark with requests in flight on every core, as a loaded token
// endpoint receives them. It shows throughput where the serial benchmark shows
// latency.
func BenchmarkTokenClientCredentialsParallel(b *testing.B) {
	env := newTestEnv(b)
	clientID, secret := env.createClient(b, clientSpec{})
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()

	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serveToken(b, env, clientID, secret, body)
		}
	})
}
