package provider_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
)

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// newRegistrationEnv starts a provider whose registration endpoint is open
// to anyone, unless configure sets another mode.
func newRegistrationEnv(t *testing.T, configure ...func(*provider.Config)) *testEnv {
	t.Helper()
	open := func(cfg *provider.Config) { cfg.Registration = provider.RegistrationOpen }
	return newTestEnv(t, append([]func(*provider.Config){open}, configure...)...)
}

// sendJSON sends body, as JSON unless it is a string, with bearer as the
// Bearer token unless empty, and decodes a JSON response.
func sendJSON(t *testing.T, method, target, bearer string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var reader io.Reader
	switch body := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(body)
	default:
		encoded, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		reader = bytes.NewReader(encoded)
	}

	req, err := http.NewRequest(method, target, reader)
	if err != nil {
		t.Fatal(err)
	}
	if reader != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var decoded map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &decoded); err != nil {
			t.Fatalf("%s %s: body is not JSON (%d): %.300s", method, target, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, resp.Header, decoded
}

// registerClientOK registers metadata at the open registration endpoint
// and returns the client information response.
func registerClientOK(t *testing.T, env *testEnv, metadata map[string]any) map[string]any {
	t.Helper()
	status, _, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", "", metadata)
	if status != http.StatusCreated {
		t.Fatalf("register client: status %d, expected 201: %v", status, redacted(body))
	}
	if id, _ := body["client_id"].(string); id == "" {
		t.Fatalf("registration response has no client_id: %v", redacted(body))
	}
	return body
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// keySet returns the public halves of keys as a JSON Web Key Set.
func keySet(t *testing.T, keys ...jose.JSONWebKey) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// thumbprintKID returns the RFC 7638 thumbprint of key's public half, the
// kid the conformance suite gives the keys it serves at a jwks_uri.
func thumbprintKID(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: &key.PublicKey}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// assertionClaims are the claims of a valid client assertion for
// audience, valid for a minute and with a fresh jti.
func assertionClaims(clientID, audience string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": clientID, "sub": clientID, "aud": audience, "jti": uuid.NewString(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
	}
}

// signAssertion signs claims as a compact JWT with key: a private key, or
// the secret's bytes for HMAC. The kid header is left out when empty.
func signAssertion(t *testing.T, key any, algorithm jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	options := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		options = options.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: algorithm, Key: key}, options)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := josejwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// withAssertion adds a client assertion to form, which it returns.
func withAssertion(form url.Values, assertion string) url.Values {
	form.Set("client_assertion_type", jwtBearer)
	form.Set("client_assertion", assertion)
	return form
}

// authorizeInBrowser signs username in, approves the consent page that
// every dynamically registered client gets, and returns the code and its
// PKCE verifier.
func authorizeInBrowser(t *testing.T, env *testEnv, clientID, username, password, scope string) (code, verifier string) {
	t.Helper()
	verifier, challenge := pkcePair()
	state := "state-" + uuid.NewString()
	params := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {testsupport.CallbackURL},
		"scope": {scope}, "state": {state}, "nonce": {"nonce-" + uuid.NewString()},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	b := newBrowser(t)
	next := b.Get(env.issuer + "/oauth2/auth?" + params.Encode())
	if next.URL.Path == "/login" {
		next = b.Login(env.issuer, next, username, password)
	}
	next = b.decide(env.issuer, next, "allow")
	callback := testsupport.CallbackParams(t, next)
	if callback.Get("error") != "" {
		t.Fatalf("authorization failed: %s: %s", callback.Get("error"), callback.Get("error_description"))
	}
	if callback.Get("state") != state {
		t.Fatalf("callback state = %q, expected %q", callback.Get("state"), state)
	}
	return callback.Get("code"), verifier
}

// expectInvalidClient checks a token endpoint response rejecting the
// client. It reports only the error members, never issued tokens.
func expectInvalidClient(t *testing.T, attempt string, status int, body map[string]any) {
	t.Helper()
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("%s: status %d, error %v (%v), expected 401 invalid_client", attempt, status, body["error"], body["error_description"])
	}
}

func TestPrivateKeyJWTCodeFlow(t *testing.T) {
	env := newRegistrationEnv(t)
	key := newRSAKey(t)
	registered := registerClientOK(t, env, map[string]any{
		"redirect_uris":              []string{testsupport.CallbackURL},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method": "private_key_jwt",
		// As the conformance suite registers it: use sig, alg RS256, no kid.
		"jwks": keySet(t, jose.JSONWebKey{Key: &key.PublicKey, Use: "sig", Algorithm: "RS256"}),
	})
	clientID := registered["client_id"].(string)
	if _, ok := registered["client_secret"]; ok {
		t.Errorf("a private_key_jwt client was issued a client_secret")
	}
	user, password := env.createUser(t, "alice")
	tokenURL := env.issuer + "/oauth2/token"

	code, verifier := authorizeInBrowser(t, env, clientID, "alice", password, "openid offline_access")
	exchange := withAssertion(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL},
		"code_verifier": {verifier},
	}, signAssertion(t, key, jose.RS256, "", assertionClaims(clientID, tokenURL)))
	status, _, tokens := postForm(t, tokenURL, "", "", exchange)
	if status != http.StatusOK {
		t.Fatalf("code exchange with private_key_jwt: status %d: %v", status, redacted(tokens))
	}
	idToken, _ := tokens["id_token"].(string)
	_, idClaims := decodeJWT(t, idToken)
	if idClaims["sub"] != user.ID || !jsonContains(idClaims["aud"], clientID) {
		t.Errorf("ID token sub %v aud %v, expected %s and %s", idClaims["sub"], idClaims["aud"], user.ID, clientID)
	}
	refreshToken, _ := tokens["refresh_token"].(string)
	if refreshToken == "" {
		t.Fatalf("no refresh token although offline_access was granted: %v", redacted(tokens))
	}

	replay := withAssertion(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}},
		exchange.Get("client_assertion"))
	status, _, body := postForm(t, tokenURL, "", "", replay)
	expectInvalidClient(t, "replayed assertion", status, body)

	otherKey := newRSAKey(t)
	status, _, body = postForm(t, tokenURL, "", "", withAssertion(
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}},
		signAssertion(t, otherKey, jose.RS256, "", assertionClaims(clientID, tokenURL))))
	expectInvalidClient(t, "assertion signed with an unregistered key", status, body)

	// OpenID Connect Core §9 names the token endpoint as the audience, and
	// RFC 7523 §3 allows the issuer too.
	status, _, body = postForm(t, tokenURL, "", "", withAssertion(
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}},
		signAssertion(t, key, jose.RS256, "", assertionClaims(clientID, env.issuer))))
	if status != http.StatusOK || body["access_token"] == nil {
		t.Errorf("refresh with an assertion whose aud is the issuer: status %d %v, expected 200", status, redacted(body))
	}
}

func TestPrivateKeyJWTWithRotatedJWKSURI(t *testing.T) {
	env := newRegistrationEnv(t)
	firstKey, secondKey := newRSAKey(t), newRSAKey(t)

	var mu sync.Mutex
	current, fetches := firstKey, 0
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(keySet(t, jose.JSONWebKey{Key: &current.PublicKey, KeyID: thumbprintKID(t, current), Use: "sig", Algorithm: "RS256"}))
	}))
	t.Cleanup(keys.Close)
	fetchCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return fetches
	}

	registered := registerClientOK(t, env, map[string]any{
		"redirect_uris":                   []string{testsupport.CallbackURL},
		"grant_types":                     []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": "RS256",
		"jwks_uri":                        keys.URL + "/jwks.json",
	})
	clientID := registered["client_id"].(string)
	if registered["jwks_uri"] != keys.URL+"/jwks.json" {
		t.Errorf("registered jwks_uri = %v", registered["jwks_uri"])
	}
	_, password := env.createUser(t, "bob")
	tokenURL := env.issuer + "/oauth2/token"

	code, verifier := authorizeInBrowser(t, env, clientID, "bob", password, "openid offline_access")
	status, _, tokens := postForm(t, tokenURL, "", "", withAssertion(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL},
		"code_verifier": {verifier},
	}, signAssertion(t, firstKey, jose.RS256, thumbprintKID(t, firstKey), assertionClaims(clientID, tokenURL))))
	if status != http.StatusOK {
		t.Fatalf("code exchange with a jwks_uri key: status %d: %v", status, redacted(tokens))
	}
	refreshToken, _ := tokens["refresh_token"].(string)

	// The client rotates its key. Latchkey fetches the jwks_uri again when
	// an assertion names an unknown kid, at most once a second.
	mu.Lock()
	current = secondKey
	mu.Unlock()
	time.Sleep(1100 * time.Millisecond)
	status, _, refreshed := postForm(t, tokenURL, "", "", withAssertion(
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}},
		signAssertion(t, secondKey, jose.RS256, thumbprintKID(t, secondKey), assertionClaims(clientID, tokenURL))))
	if status != http.StatusOK {
		t.Fatalf("refresh signed with the rotated key: status %d: %v", status, redacted(refreshed))
	}
	if got := fetchCount(); got != 2 {
		t.Errorf("jwks_uri fetched %d times, expected 2: once at the exchange, once after the rotation", got)
	}

	newRefreshToken, _ := refreshed["refresh_token"].(string)
	status, _, body := postForm(t, tokenURL, "", "", withAssertion(
		url.Values{"grant_type": {"refresh_token"}, "refresh_token": {newRefreshToken}},
		signAssertion(t, firstKey, jose.RS256, thumbprintKID(t, firstKey), assertionClaims(clientID, tokenURL))))
	expectInvalidClient(t, "assertion signed with the retired key", status, body)
}

func TestClientSecretJWT(t *testing.T) {
	env := newRegistrationEnv(t)
	registered := registerClientOK(t, env, map[string]any{
		"grant_types":                []string{"client_credentials"},
		"token_endpoint_auth_method": "client_secret_jwt",
	})
	clientID := registered["client_id"].(string)
	secret, _ := registered["client_secret"].(string)
	if secret == "" || registered["client_secret_expires_at"] != float64(0) {
		t.Fatalf("client_secret_jwt client: client_secret issued %t, client_secret_expires_at %v; expected a secret that does not expire",
			secret != "", registered["client_secret_expires_at"])
	}
	tokenURL := env.issuer + "/oauth2/token"
	grant := func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

	var accessToken, usedAssertion string
	for _, algorithm := range []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512} {
		assertion := signAssertion(t, []byte(secret), algorithm, "", assertionClaims(clientID, tokenURL))
		status, _, body := postForm(t, tokenURL, "", "", withAssertion(grant(), assertion))
		if status != http.StatusOK {
			t.Fatalf("client_credentials with a %s assertion: status %d: %v", algorithm, status, redacted(body))
		}
		accessToken, _ = body["access_token"].(string)
		usedAssertion = assertion
	}

	status, _, body := postForm(t, tokenURL, "", "", withAssertion(grant(), usedAssertion))
	expectInvalidClient(t, "replayed assertion", status, body)

	status, _, body = postForm(t, tokenURL, "", "", withAssertion(grant(),
		signAssertion(t, []byte(provider.GenerateClientSecret()+provider.GenerateClientSecret()), jose.HS256, "", assertionClaims(clientID, tokenURL))))
	expectInvalidClient(t, "assertion signed with another secret", status, body)

	status, _, body = postForm(t, tokenURL, clientID, secret, grant())
	expectInvalidClient(t, "the secret sent with HTTP Basic", status, body)
	status, _, body = postForm(t, env.issuer+"/oauth2/introspect", clientID, secret, url.Values{"token": {accessToken}})
	expectInvalidClient(t, "the secret sent with HTTP Basic to introspection", status, body)

	status, _, body = postForm(t, tokenURL, clientID, secret, withAssertion(grant(),
		signAssertion(t, []byte(secret), jose.HS256, "", assertionClaims(clientID, tokenURL))))
	if status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("assertion and HTTP Basic together: status %d %v, expected 400 invalid_request", status, redacted(body))
	}

	introspectionURL := env.issuer + "/oauth2/introspect"
	status, _, body = postForm(t, introspectionURL, "", "", withAssertion(url.Values{"token": {accessToken}},
		signAssertion(t, []byte(secret), jose.HS256, "", assertionClaims(clientID, introspectionURL))))
	if status != http.StatusOK || body["active"] != true || body["client_id"] != clientID {
		t.Errorf("introspection with a client assertion: status %d %v, expected the token active", status, redacted(body))
	}

	revocationURL := env.issuer + "/oauth2/revoke"
	status, _, body = postForm(t, revocationURL, "", "", withAssertion(url.Values{"token": {accessToken}},
		signAssertion(t, []byte(secret), jose.HS256, "", assertionClaims(clientID, tokenURL))))
	if status != http.StatusOK {
		t.Errorf("revocation with a client assertion: status %d %v, expected 200", status, redacted(body))
	}
	status, _, body = postForm(t, introspectionURL, "", "", withAssertion(url.Values{"token": {accessToken}},
		signAssertion(t, []byte(secret), jose.HS256, "", assertionClaims(clientID, introspectionURL))))
	if status != http.StatusOK || body["active"] != false {
		t.Errorf("introspection of the revoked token: status %d %v, expected it inactive", status, redacted(body))
	}
}

func TestClientAssertionClaimsAreChecked(t *testing.T) {
	env := newRegistrationEnv(t)
	registered := registerClientOK(t, env, map[string]any{
		"grant_types":                     []string{"client_credentials"},
		"token_endpoint_auth_method":      "client_secret_jwt",
		"token_endpoint_auth_signing_alg": "HS512",
	})
	clientID := registered["client_id"].(string)
	secret := []byte(registered["client_secret"].(string))
	other := registerClientOK(t, env, map[string]any{
		"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_jwt",
	})
	tokenURL := env.issuer + "/oauth2/token"

	cases := map[string]struct {
		algorithm jose.SignatureAlgorithm
		change    func(claims map[string]any)
	}{
		"valid assertion":       {jose.HS512, func(map[string]any) {}},
		"iss is another client": {jose.HS512, func(c map[string]any) { c["iss"] = other["client_id"] }},
		"sub is another client": {jose.HS512, func(c map[string]any) { c["sub"] = other["client_id"] }},
		"aud is another server": {jose.HS512, func(c map[string]any) { c["aud"] = "https://other.example.com/token" }},
		"expired":               {jose.HS512, func(c map[string]any) { c["exp"] = time.Now().Add(-5 * time.Minute).Unix() }},
		"exp a day away":        {jose.HS512, func(c map[string]any) { c["exp"] = time.Now().Add(24 * time.Hour).Unix() }},
		"no exp":                {jose.HS512, func(c map[string]any) { delete(c, "exp") }},
		"no jti":                {jose.HS512, func(c map[string]any) { delete(c, "jti") }},
		"not valid yet":         {jose.HS512, func(c map[string]any) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() }},
		"algorithm other than the registered one": {jose.HS256, func(map[string]any) {}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			claims := assertionClaims(clientID, tokenURL)
			tc.change(claims)
			status, _, body := postForm(t, tokenURL, "", "", withAssertion(
				url.Values{"grant_type": {"client_credentials"}},
				signAssertion(t, secret, tc.algorithm, "", claims)))
			if name == "valid assertion" {
				if status != http.StatusOK {
					t.Fatalf("status %d %v, expected 200", status, redacted(body))
				}
				return
			}
			expectInvalidClient(t, name, status, body)
		})
	}

	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(mustJSON(t, assertionClaims(clientID, tokenURL))) + "."
	status, _, body := postForm(t, tokenURL, "", "", withAssertion(url.Values{"grant_type": {"client_credentials"}}, unsigned))
	expectInvalidClient(t, "unsigned assertion", status, body)
}

func mustJSON(t *testing.T, value any) []byte {
	t.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDeletedClientTokensStopWorking(t *testing.T) {
	env := newRegistrationEnv(t)
	registered := registerClientOK(t, env, map[string]any{
		"redirect_uris": []string{testsupport.CallbackURL},
		"grant_types":   []string{"authorization_code", "refresh_token"},
	})
	clientID, secret := registered["client_id"].(string), registered["client_secret"].(string)
	accessToken, clientURI := registered["registration_access_token"].(string), registered["registration_client_uri"].(string)
	_, password := env.createUser(t, "carol")
	tokenURL := env.issuer + "/oauth2/token"

	code, verifier := authorizeInBrowser(t, env, clientID, "carol", password, "openid profile offline_access")
	status, _, tokens := postForm(t, tokenURL, clientID, secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL},
		"code_verifier": {verifier},
	})
	if status != http.StatusOK {
		t.Fatalf("code exchange: status %d: %v", status, redacted(tokens))
	}
	userinfo := func() int {
		req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tokens["access_token"].(string))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := userinfo(); got != http.StatusOK {
		t.Fatalf("userinfo before deletion: status %d", got)
	}

	if status, _, body := sendJSON(t, http.MethodDelete, clientURI, accessToken, nil); status != http.StatusNoContent {
		t.Fatalf("delete client: status %d %v, expected 204", status, redacted(body))
	}
	if got := userinfo(); got != http.StatusUnauthorized {
		t.Errorf("userinfo with the deleted client's access token: status %d, expected 401", got)
	}
	status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tokens["refresh_token"].(string)},
	})
	expectInvalidClient(t, "refresh by the deleted client", status, body)
}

// redacted returns body with tokens, codes and secrets replaced, for
// failure messages.
func redacted(body map[string]any) map[string]any {
	copied := make(map[string]any, len(body))
	for name, value := range body {
		if strings.Contains(name, "token") || strings.Contains(name, "secret") || name == "code" {
			value = "[redacted]"
		}
		copied[name] = value
	}
	return copied
}
