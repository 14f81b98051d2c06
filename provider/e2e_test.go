package provider_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
)

// relyingParty is a third-party app using go-oidc and x/oauth2, as any
// OpenID Connect client would.
type relyingParty struct {
	provider *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRelyingParty(t *testing.T, env *testEnv, clientID, secret string, scopes ...string) *relyingParty {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, env.issuer)
	if err != nil {
		t.Fatalf("discover provider: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	}
	return &relyingParty{
		provider: p,
		config: oauth2.Config{
			ClientID:     clientID,
			ClientSecret: secret,
			Endpoint:     endpointWithStyle(p.Endpoint(), secret),
			RedirectURL:  testsupport.CallbackURL,
			Scopes:       scopes,
		},
		verifier: p.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

// signIn runs the browser part of the code flow with PKCE and returns the
// code, after checking state.
func (rp *relyingParty) signIn(t *testing.T, env *testEnv, b *browser, username, password, verifier, nonce string) string {
	t.Helper()
	state := "state-" + nonce
	authURL := rp.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	next := b.Get(authURL)
	if next.URL.Path == "/login" {
		next = b.Login(env.issuer, next, username, password)
	}
	if next.URL != nil && next.URL.Path == "/consent" && next.Status == http.StatusOK {
		next = b.decide(env.issuer, next, "allow")
	}
	params := testsupport.CallbackParams(t, next)
	if params.Get("error") != "" {
		t.Fatalf("authorization failed: %s: %s", params.Get("error"), params.Get("error_description"))
	}
	if params.Get("state") != state {
		t.Fatalf("state = %q, want %q", params.Get("state"), state)
	}
	return params.Get("code")
}

// decodeJWT returns the header and claims of a compact JWT without
// verifying it.
func decodeJWT(t *testing.T, raw string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	var header, claims map[string]any
	for i, target := range []*map[string]any{&header, &claims} {
		data, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, target); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// verifyWithJWKS checks a JWT's signature against the published keys, as a
// resource server would.
func verifyWithJWKS(t *testing.T, env *testEnv, raw string, algorithm jose.SignatureAlgorithm) map[string]any {
	t.Helper()
	resp, err := http.Get(env.issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("decode JWKS: %v", err)
	}

	token, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{algorithm})
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	keys := set.Key(token.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys with kid %q, want 1", len(keys), token.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := token.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("JWT signature does not verify with the published key: %v", err)
	}
	return claims
}

func TestCodeFlowWithPKCE(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})
	user, password := env.createUser(t, "alice")
	rp := newRelyingParty(t, env, clientID, secret)
	ctx := context.Background()

	verifier, _ := pkcePair()
	code := rp.signIn(t, env, newBrowser(t), "Alice", password, verifier, "nonce-0123456789")
	token, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange code: %v", err)
	}

	rawIDToken, _ := token.Extra("id_token").(string)
	idToken, err := rp.verifier.Verify(ctx, rawIDToken)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	if idToken.Subject != user.ID {
		t.Errorf("ID token sub = %q, want %q", idToken.Subject, user.ID)
	}
	if idToken.Nonce != "nonce-0123456789" {
		t.Errorf("ID token nonce = %q", idToken.Nonce)
	}
	if err := idToken.VerifyAccessToken(token.AccessToken); err != nil {
		t.Errorf("at_hash does not match the access token: %v", err)
	}

	idHeader, idClaims := decodeJWT(t, rawIDToken)
	if idHeader["alg"] != "RS256" || idHeader["kid"] == nil {
		t.Errorf("ID token header = %v, want RS256 with a kid", idHeader)
	}
	for _, claim := range []string{"auth_time", "sid", "at_hash", "iat", "exp", "jti"} {
		if _, ok := idClaims[claim]; !ok {
			t.Errorf("ID token has no %s claim: %v", claim, idClaims)
		}
	}
	if _, ok := idClaims["rat"]; ok {
		t.Errorf("ID token carries the non-standard rat claim")
	}

	atHeader, _ := decodeJWT(t, token.AccessToken)
	if atHeader["typ"] != "at+jwt" || atHeader["alg"] != "ES256" || atHeader["kid"] == nil {
		t.Errorf("access token header = %v, want typ at+jwt, ES256 and a kid", atHeader)
	}
	atClaims := verifyWithJWKS(t, env, token.AccessToken, jose.ES256)
	wantClaims := map[string]any{
		"iss": env.issuer, "sub": user.ID, "client_id": clientID,
		"scope": "openid profile email offline_access", "sid": idClaims["sid"],
	}
	for name, want := range wantClaims {
		if atClaims[name] != want {
			t.Errorf("access token %s = %v, want %v", name, atClaims[name], want)
		}
	}
	for _, claim := range []string{"aud", "exp", "iat", "jti", "auth_time"} {
		if _, ok := atClaims[claim]; !ok {
			t.Errorf("access token has no %s claim: %v", claim, atClaims)
		}
	}
	if token.RefreshToken == "" {
		t.Error("no refresh token although offline_access was granted")
	}

	userInfo, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if userInfo.Subject != idToken.Subject {
		t.Errorf("userinfo sub = %q, ID token sub = %q", userInfo.Subject, idToken.Subject)
	}
	if userInfo.Email != "alice@example.com" || !userInfo.EmailVerified {
		t.Errorf("userinfo email = %q verified %t", userInfo.Email, userInfo.EmailVerified)
	}
}

func TestTokenResponseHeaders(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})

	req, _ := http.NewRequest(http.MethodPost, env.issuer+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}

func TestUserinfoMethods(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "bob")
	rp := newRelyingParty(t, env, clientID, secret, "openid", "profile")
	verifier, _ := pkcePair()
	code := rp.signIn(t, env, newBrowser(t), "bob", password, verifier, "nonce-userinfo")
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	requests := map[string]func() *http.Request{
		"GET with header": func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+token.AccessToken)
			return req
		},
		"lower-case scheme": func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
			req.Header.Set("Authorization", "bearer "+token.AccessToken)
			return req
		},
		"POST with form body": func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, env.issuer+"/userinfo",
				strings.NewReader(url.Values{"access_token": {token.AccessToken}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		},
	}
	for name, build := range requests {
		t.Run(name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(build())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			var claims map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&claims)
			if claims["preferred_username"] != "bob" {
				t.Errorf("preferred_username = %v", claims["preferred_username"])
			}
			if _, ok := claims["email"]; ok {
				t.Errorf("email released without the email scope")
			}
		})
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "carol")
	rp := newRelyingParty(t, env, clientID, secret)
	ctx := context.Background()
	verifier, _ := pkcePair()
	code := rp.signIn(t, env, newBrowser(t), "carol", password, verifier, "nonce-refresh1")
	first, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	refresh := func(refreshToken string) (int, map[string]any) {
		status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		})
		return status, body
	}

	status, second := refresh(first.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, second)
	}
	newRefresh, _ := second["refresh_token"].(string)
	if newRefresh == "" || newRefresh == first.RefreshToken {
		t.Fatalf("refresh token was not rotated: %v", second)
	}
	rawIDToken, _ := second["id_token"].(string)
	if _, err := rp.verifier.Verify(ctx, rawIDToken); err != nil {
		t.Errorf("refreshed ID token rejected by go-oidc: %v", err)
	}
	if first.AccessToken == second["access_token"] {
		t.Error("refresh returned the same access token")
	}
	if active := introspect(t, env, clientID, secret, first.AccessToken); active {
		t.Error("access token of the rotated refresh token is still active")
	}

	status, reuse := refresh(first.RefreshToken)
	if status != http.StatusBadRequest || reuse["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %v, want 400 invalid_grant", status, reuse)
	}
	status, after := refresh(newRefresh)
	if status != http.StatusBadRequest || after["error"] != "invalid_grant" {
		t.Errorf("refresh token issued before the reuse still works: %d %v", status, after)
	}
	if active := introspect(t, env, clientID, secret, second["access_token"].(string)); active {
		t.Error("access token of the grant is still active after refresh-token reuse")
	}
}

// introspect reports whether the provider reports a token as active.
func introspect(t *testing.T, env *testEnv, clientID, secret, token string) bool {
	t.Helper()
	status, _, body := postForm(t, env.issuer+"/oauth2/introspect", clientID, secret, url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspect: %d %v", status, body)
	}
	active, _ := body["active"].(bool)
	return active
}

func TestClientCredentialsIntrospectionAndRevocation(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})

	status, _, token := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"client_credentials"}, "scope": {"api:read"},
	})
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", status, token)
	}
	accessToken := token["access_token"].(string)
	if _, ok := token["refresh_token"]; ok {
		t.Error("client_credentials returned a refresh token")
	}
	claims := verifyWithJWKS(t, env, accessToken, jose.ES256)
	if claims["sub"] != clientID || claims["client_id"] != clientID || claims["scope"] != "api:read" {
		t.Errorf("access token claims = %v", claims)
	}

	status, _, info := postForm(t, env.issuer+"/oauth2/introspect", clientID, secret, url.Values{"token": {accessToken}})
	if status != http.StatusOK || info["active"] != true {
		t.Fatalf("introspect before revocation: %d %v", status, info)
	}
	if info["client_id"] != clientID || info["scope"] != "api:read" || info["token_type"] != "Bearer" {
		t.Errorf("introspection response = %v", info)
	}

	status, _, body := postForm(t, env.issuer+"/oauth2/revoke", clientID, secret, url.Values{"token": {accessToken}})
	if status != http.StatusOK {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if introspect(t, env, clientID, secret, accessToken) {
		t.Error("token is still active after revocation")
	}

	status, _, body = postForm(t, env.issuer+"/oauth2/revoke", clientID, secret, url.Values{"token": {"not-a-token"}})
	if status != http.StatusOK {
		t.Errorf("revoking an unknown token: %d %v, want 200", status, body)
	}
}

func TestPublicClient(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{public: true, firstParty: true})
	_, password := env.createUser(t, "dave")
	rp := newRelyingParty(t, env, clientID, "")
	ctx := context.Background()

	verifier, _ := pkcePair()
	code := rp.signIn(t, env, newBrowser(t), "dave", password, verifier, "nonce-public1")
	token, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("public client exchange: %v", err)
	}
	if _, err := rp.verifier.Verify(ctx, token.Extra("id_token").(string)); err != nil {
		t.Errorf("ID token: %v", err)
	}

	t.Run("PKCE is required", func(t *testing.T) {
		b := newBrowser(t)
		authURL := rp.config.AuthCodeURL("state-no-pkce")
		params := testsupport.CallbackParams(t, b.Get(authURL))
		if params.Get("error") != "invalid_request" {
			t.Errorf("error = %q, want invalid_request", params.Get("error"))
		}
	})
	t.Run("plain PKCE is refused", func(t *testing.T) {
		b := newBrowser(t)
		authURL := rp.config.AuthCodeURL("state-plain", oauth2.SetAuthURLParam("code_challenge", verifier),
			oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		params := testsupport.CallbackParams(t, b.Get(authURL))
		if params.Get("error") != "invalid_request" {
			t.Errorf("error = %q, want invalid_request", params.Get("error"))
		}
	})
}

func TestConsent(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})
	_, password := env.createUser(t, "erin")
	rp := newRelyingParty(t, env, clientID, secret, "openid", "email")
	b := newBrowser(t)

	t.Run("deny returns access_denied", func(t *testing.T) {
		_, challenge := pkcePair()
		authURL := rp.config.AuthCodeURL("state-deny-1", oauth2.SetAuthURLParam("code_challenge", challenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		next := b.Login(env.issuer, b.Get(authURL), "erin", password)
		params := testsupport.CallbackParams(t, b.decide(env.issuer, next, "deny"))
		if params.Get("error") != "access_denied" || params.Get("state") != "state-deny-1" {
			t.Errorf("callback = %v, want access_denied with state", params)
		}
	})

	t.Run("allow is remembered", func(t *testing.T) {
		_, challenge := pkcePair()
		options := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", challenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256")}
		consentPage := b.Get(rp.config.AuthCodeURL("state-allow-1", options...))
		params := testsupport.CallbackParams(t, b.decide(env.issuer, consentPage, "allow"))
		if params.Get("code") == "" {
			t.Fatalf("no code after consent: %v", params)
		}
		params = testsupport.CallbackParams(t, b.Get(rp.config.AuthCodeURL("state-allow-2", options...)))
		if params.Get("code") == "" {
			t.Errorf("consent was asked again: %v", params)
		}
	})

	t.Run("prompt=consent asks again", func(t *testing.T) {
		_, challenge := pkcePair()
		next := b.Get(rp.config.AuthCodeURL("state-prompt", oauth2.SetAuthURLParam("code_challenge", challenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"), oauth2.SetAuthURLParam("prompt", "consent")))
		if next.URL.Path != "/consent" {
			t.Errorf("prompt=consent led to %s, want the consent page", next.URL)
		}
	})

	t.Run("new scope asks again", func(t *testing.T) {
		_, challenge := pkcePair()
		wider := newRelyingParty(t, env, clientID, secret, "openid", "email", "profile")
		next := b.Get(wider.config.AuthCodeURL("state-wider", oauth2.SetAuthURLParam("code_challenge", challenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256")))
		if next.URL.Path != "/consent" {
			t.Errorf("a new scope led to %s, want the consent page", next.URL)
		}
	})
}

func TestPromptAndMaxAge(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "frank")
	rp := newRelyingParty(t, env, clientID, secret, "openid")
	b := newBrowser(t)
	_, challenge := pkcePair()
	pkce := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", challenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256")}

	params := testsupport.CallbackParams(t, b.Get(rp.config.AuthCodeURL("state-none-1", append(pkce, oauth2.SetAuthURLParam("prompt", "none"))...)))
	if params.Get("error") != "login_required" {
		t.Errorf("prompt=none without a session: %v, want login_required", params)
	}

	params = testsupport.CallbackParams(t, b.Login(env.issuer, b.Get(rp.config.AuthCodeURL("state-login-1", pkce...)), "frank", password))
	if params.Get("code") == "" {
		t.Fatalf("sign-in failed: %v", params)
	}

	params = testsupport.CallbackParams(t, b.Get(rp.config.AuthCodeURL("state-none-2", append(pkce, oauth2.SetAuthURLParam("prompt", "none"))...)))
	if params.Get("code") == "" {
		t.Errorf("prompt=none with a session: %v, want a code", params)
	}

	next := b.Get(rp.config.AuthCodeURL("state-login-2", append(pkce, oauth2.SetAuthURLParam("prompt", "login"))...))
	if next.URL.Path != "/login" {
		t.Errorf("prompt=login led to %s, want the login page", next.URL)
	}
	params = testsupport.CallbackParams(t, b.Login(env.issuer, next, "frank", password))
	if params.Get("code") == "" {
		t.Errorf("sign-in with prompt=login failed: %v", params)
	}

	time.Sleep(1100 * time.Millisecond)
	next = b.Get(rp.config.AuthCodeURL("state-maxage", append(pkce, oauth2.SetAuthURLParam("max_age", "0"))...))
	if next.URL.Path != "/login" {
		t.Errorf("max_age=0 led to %s, want the login page", next.URL)
	}
}

// endpointWithStyle fixes how the client authenticates, so that a failure
// is not retried with the other method.
func endpointWithStyle(endpoint oauth2.Endpoint, secret string) oauth2.Endpoint {
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if secret == "" {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return endpoint
}

func TestIntrospectionOfRefreshToken(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	user, password := env.createUser(t, "olga")
	rp := newRelyingParty(t, env, clientID, secret)
	code, verifier := codeFor(t, env, rp, "olga", password)
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	status, _, access := postForm(t, env.issuer+"/oauth2/introspect", clientID, secret, url.Values{"token": {token.AccessToken}})
	if status != http.StatusOK || access["active"] != true {
		t.Fatalf("introspect access token: %d %v", status, access)
	}
	status, _, refresh := postForm(t, env.issuer+"/oauth2/introspect", clientID, secret, url.Values{"token": {token.RefreshToken}})
	if status != http.StatusOK || refresh["active"] != true {
		t.Fatalf("introspect refresh token: %d %v", status, refresh)
	}

	if access["token_use"] != "access_token" || access["token_type"] != "Bearer" {
		t.Errorf("access token: token_use %v, token_type %v", access["token_use"], access["token_type"])
	}
	if refresh["token_use"] != "refresh_token" {
		t.Errorf("refresh token: token_use %v", refresh["token_use"])
	}
	if refresh["exp"].(float64) <= access["exp"].(float64) {
		t.Errorf("refresh token exp %v is not later than access token exp %v", refresh["exp"], access["exp"])
	}
	for _, body := range []map[string]any{access, refresh} {
		if body["sub"] != user.ID || body["username"] != "olga" || body["iss"] != env.issuer || body["sid"] == nil {
			t.Errorf("introspection body = %v", body)
		}
	}
}

func decodeSegment(segment string) (string, error) {
	data, err := base64.RawURLEncoding.DecodeString(segment)
	return string(data), err
}
