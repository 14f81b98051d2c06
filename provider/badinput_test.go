package provider_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
)

// authURL builds an authorization URL from explicit parameters.
func authURL(env *testEnv, params url.Values) string {
	return env.issuer + "/oauth2/auth?" + params.Encode()
}

func validAuthParams(clientID string) url.Values {
	_, challenge := pkcePair()
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {testsupport.CallbackURL},
		"scope":                 {"openid"},
		"state":                 {"state-1234567890"},
		"nonce":                 {"nonce-1234567890"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
}

func TestAuthorizeErrorsWithoutTrustedRedirect(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{})

	cases := map[string]func(url.Values){
		"unknown client_id": func(p url.Values) { p.Set("client_id", "no-such-client") },
		"missing client_id": func(p url.Values) { p.Del("client_id") },
		// fosite accepts any port on a loopback redirect_uri; Latchkey does
		// not, even to deliver an error.
		"loopback redirect_uri with another port and a bad scope": func(p url.Values) {
			p.Set("redirect_uri", "http://127.0.0.1:9999/callback")
			p.Set("scope", "openid bogus")
		},
		// fosite reads response_mode before it has matched the redirect_uri.
		"unknown response_mode":     func(p url.Values) { p.Set("response_mode", "web_message") },
		"unregistered redirect_uri": func(p url.Values) { p.Set("redirect_uri", "https://attacker.example/callback") },
		"redirect_uri with other path": func(p url.Values) {
			p.Set("redirect_uri", testsupport.CallbackURL+"/extra")
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			params := validAuthParams(clientID)
			mutate(params)
			got := newBrowser(t).Get(authURL(env, params))
			if got.Status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", got.Status)
			}
			if got.Location != "" || got.URL.Path != "/oauth2/auth" {
				t.Errorf("redirected to %q (now at %s); an untrusted request must not redirect", got.Location, got.URL)
			}
			if !strings.HasPrefix(got.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type = %q, want an HTML error page", got.Header.Get("Content-Type"))
			}
		})
	}
}

func TestAuthorizeErrorsRedirectToClient(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{})

	cases := []struct {
		name   string
		mutate func(url.Values)
		want   string
	}{
		{"missing response_type", func(p url.Values) { p.Del("response_type") }, "unsupported_response_type"},
		{"implicit response_type", func(p url.Values) { p.Set("response_type", "token") }, "unsupported_response_type"},
		{"scope not allowed for client", func(p url.Values) { p.Set("scope", "openid admin") }, "invalid_scope"},
		{"unknown code_challenge_method", func(p url.Values) { p.Set("code_challenge_method", "S512") }, "invalid_request"},
		{"plain PKCE not allowed", func(p url.Values) { p.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"short state", func(p url.Values) { p.Set("state", "abc") }, "invalid_request"},
		{"short nonce", func(p url.Values) { p.Set("nonce", "n-123") }, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := validAuthParams(clientID)
			tc.mutate(params)
			got := newBrowser(t).Get(authURL(env, params))
			if !strings.HasPrefix(got.Location, testsupport.CallbackURL) {
				t.Fatalf("status %d, Location %q: want a redirect to the client", got.Status, got.Location)
			}
			u, _ := url.Parse(got.Location)
			query := u.Query()
			if u.Fragment != "" {
				query, _ = url.ParseQuery(u.Fragment)
			}
			if query.Get("error") != tc.want {
				t.Errorf("error = %q (%s), want %q", query.Get("error"), query.Get("error_description"), tc.want)
			}
		})
	}
}

// codeFor signs a person in and returns an authorization code with its
// PKCE verifier.
func codeFor(t *testing.T, env *testEnv, rp *relyingParty, username, password string) (string, string) {
	t.Helper()
	verifier, _ := pkcePair()
	return rp.signIn(t, env, newBrowser(t), username, password, verifier, "nonce-"+username+"-code"), verifier
}

func TestTokenEndpointErrors(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "grace")
	rp := newRelyingParty(t, env, clientID, secret)
	tokenURL := env.issuer + "/oauth2/token"

	t.Run("wrong code_verifier", func(t *testing.T) {
		code, _ := codeFor(t, env, rp, "grace", password)
		wrong, _ := pkcePair()
		status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL}, "code_verifier": {wrong},
		})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("missing code_verifier", func(t *testing.T) {
		code, _ := codeFor(t, env, rp, "grace", password)
		status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL},
		})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("redirect_uri differs from authorization", func(t *testing.T) {
		code, verifier := codeFor(t, env, rp, "grace", password)
		status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL + "?x=1"}, "code_verifier": {verifier},
		})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("reused code revokes its tokens", func(t *testing.T) {
		code, verifier := codeFor(t, env, rp, "grace", password)
		exchange := url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL}, "code_verifier": {verifier},
		}
		status, _, first := postForm(t, tokenURL, clientID, secret, exchange)
		if status != http.StatusOK {
			t.Fatalf("first exchange: %d %v", status, first)
		}
		status, _, second := postForm(t, tokenURL, clientID, secret, exchange)
		expectOAuthError(t, status, second, http.StatusBadRequest, "invalid_grant")

		if introspect(t, env, clientID, secret, first["access_token"].(string)) {
			t.Error("access token from a reused code is still active")
		}
		status, _, refreshed := postForm(t, tokenURL, clientID, secret, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)},
		})
		expectOAuthError(t, status, refreshed, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("wrong client secret", func(t *testing.T) {
		status, header, body := postForm(t, tokenURL, clientID, "wrong-secret", url.Values{"grant_type": {"client_credentials"}})
		expectOAuthError(t, status, body, http.StatusUnauthorized, "invalid_client")
		if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("WWW-Authenticate = %q, want a Basic challenge", header.Get("WWW-Authenticate"))
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		status, _, body := postForm(t, tokenURL, "no-such-client", "secret", url.Values{"grant_type": {"client_credentials"}})
		expectOAuthError(t, status, body, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("no client authentication", func(t *testing.T) {
		status, _, body := postForm(t, tokenURL, "", "", url.Values{"grant_type": {"client_credentials"}})
		expectOAuthError(t, status, body, http.StatusUnauthorized, "invalid_client")
	})

	t.Run("unsupported grant type", func(t *testing.T) {
		status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{"grant_type": {"password"}, "username": {"grace"}, "password": {password}})
		expectOAuthError(t, status, body, http.StatusBadRequest, "unsupported_grant_type")
	})

	t.Run("missing grant type", func(t *testing.T) {
		status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_request")
	})

	t.Run("unknown code", func(t *testing.T) {
		status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{
			"grant_type": {"authorization_code"}, "code": {"ory_ac_bogus.bogus"}, "redirect_uri": {testsupport.CallbackURL},
		})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
	})

	t.Run("scope not allowed for client_credentials", func(t *testing.T) {
		status, _, body := postForm(t, tokenURL, clientID, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_scope")
	})
}

// expectOAuthError checks an RFC 6749 §5.2 error response: the status, the
// error code, and no fields beyond error and error_description.
func expectOAuthError(t *testing.T, status int, body map[string]any, wantStatus int, wantError string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status = %d, want %d (body %v)", status, wantStatus, body)
	}
	if body["error"] != wantError {
		t.Errorf("error = %v (%v), want %s", body["error"], body["error_description"], wantError)
	}
	for field := range body {
		if field != "error" && field != "error_description" {
			t.Errorf("error body has non-standard field %q", field)
		}
	}
}

func TestExpiredCode(t *testing.T) {
	env := newTestEnv(t, func(c *provider.Config) { c.AuthorizationCodeLifetime = time.Second })
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "heidi")
	rp := newRelyingParty(t, env, clientID, secret)

	code, verifier := codeFor(t, env, rp, "heidi", password)
	time.Sleep(2 * time.Second)
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL}, "code_verifier": {verifier},
	})
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
}

func TestPlainPKCEForAllowedClient(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true, allowPlainPKCE: true})
	_, password := env.createUser(t, "ivan")
	rp := newRelyingParty(t, env, clientID, secret, "openid")
	b := newBrowser(t)

	verifier, _ := pkcePair()
	next := b.Get(rp.config.AuthCodeURL("state-plain-ok", oauth2.SetAuthURLParam("code_challenge", verifier),
		oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	params := testsupport.CallbackParams(t, b.Login(env.issuer, next, "ivan", password))
	if params.Get("code") == "" {
		t.Fatalf("plain PKCE refused for a client that allows it: %v", params)
	}
	if _, err := rp.config.Exchange(context.Background(), params.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Errorf("exchange with plain verifier: %v", err)
	}
}

func TestClientSecretPostAndES256IDToken(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true, authMethod: "client_secret_post", idTokenAlg: provider.AlgES256})
	_, password := env.createUser(t, "judy")
	rp := newRelyingParty(t, env, clientID, secret)
	rp.config.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	ctx := context.Background()

	code, verifier := codeFor(t, env, rp, "judy", password)
	token, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange with client_secret_post: %v", err)
	}
	rawIDToken := token.Extra("id_token").(string)
	header, _ := decodeJWT(t, rawIDToken)
	if header["alg"] != "ES256" {
		t.Errorf("ID token alg = %v, want ES256", header["alg"])
	}
	verifier2 := rp.provider.Verifier(&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{oidc.ES256}})
	if _, err := verifier2.Verify(ctx, rawIDToken); err != nil {
		t.Errorf("go-oidc rejects the ES256 ID token: %v", err)
	}

	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{"grant_type": {"client_credentials"}})
	expectOAuthError(t, status, body, http.StatusUnauthorized, "invalid_client")
}

func TestOversizedRequests(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})

	t.Run("long query", func(t *testing.T) {
		params := validAuthParams(clientID)
		params.Set("nonce", strings.Repeat("n", 9000))
		got := newBrowser(t).Get(authURL(env, params))
		if got.Status != http.StatusBadRequest || got.Location != "" {
			t.Errorf("status = %d, Location %q; want 400 without redirect", got.Status, got.Location)
		}
	})
	t.Run("long parameter", func(t *testing.T) {
		status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
			"grant_type": {"client_credentials"}, "scope": {strings.Repeat("s", 5000)},
		})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_request")
	})
	t.Run("large body", func(t *testing.T) {
		status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
			"grant_type": {"client_credentials"}, "padding": {strings.Repeat("p", 70<<10)},
		})
		expectOAuthError(t, status, body, http.StatusRequestEntityTooLarge, "invalid_request")
	})
}

func TestUserinfoErrors(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})

	get := func(authorization string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, resp.Header.Get("WWW-Authenticate")
	}

	resp, challenge := get("")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") {
		t.Errorf("no token: %d %q, want 401 with a Bearer challenge", resp.StatusCode, challenge)
	}

	resp, challenge = get("Bearer not-a-token")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Errorf("bad token: %d %q, want 401 invalid_token", resp.StatusCode, challenge)
	}

	resp, challenge = get("Basic " + "abc")
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(challenge, "error=") {
		t.Errorf("Basic scheme: %d %q, want 401 with a bare Bearer challenge", resp.StatusCode, challenge)
	}

	_, _, token := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{"grant_type": {"client_credentials"}})
	resp, challenge = get("Bearer " + token["access_token"].(string))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) {
		t.Errorf("token without openid: %d %q, want 403 insufficient_scope", resp.StatusCode, challenge)
	}
}

func TestLoginFormErrors(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{})
	_, password := env.createUser(t, "kim")

	t.Run("wrong password and unknown user read alike", func(t *testing.T) {
		b := newBrowser(t)
		loginPage := b.Get(authURL(env, validAuthParams(clientID)))
		wrong := b.Login(env.issuer, loginPage, "kim", "not-the-password")
		unknown := b.Login(env.issuer, loginPage, "nobody", password)
		for name, got := range map[string]*testsupport.Page{"wrong password": wrong, "unknown user": unknown} {
			if got.Status != http.StatusBadRequest {
				t.Errorf("%s: status = %d, want 400", name, got.Status)
			}
			if !strings.Contains(got.Body, "Invalid username or password.") {
				t.Errorf("%s: page does not say the credentials are invalid", name)
			}
		}
		if cookie := sessionCookieOf(b, env); cookie != "" {
			t.Error("failed logins set a session cookie")
		}
	})

	t.Run("missing CSRF token", func(t *testing.T) {
		b := newBrowser(t)
		loginPage := b.Get(authURL(env, validAuthParams(clientID)))
		form := testsupport.HiddenInputs(t, loginPage.Body)
		form.Del("csrf_token")
		form.Set("username", "kim")
		form.Set("password", password)
		if got := b.PostForm(env.issuer+"/login", form); got.Status != http.StatusForbidden {
			t.Errorf("status = %d, want 403", got.Status)
		}
	})

	t.Run("CSRF token of another browser", func(t *testing.T) {
		other := newBrowser(t)
		otherForm := testsupport.HiddenInputs(t, other.Get(authURL(env, validAuthParams(clientID))).Body)
		b := newBrowser(t)
		form := testsupport.HiddenInputs(t, b.Get(authURL(env, validAuthParams(clientID))).Body)
		form.Set("csrf_token", otherForm.Get("csrf_token"))
		form.Set("username", "kim")
		form.Set("password", password)
		if got := b.PostForm(env.issuer+"/login", form); got.Status != http.StatusForbidden {
			t.Errorf("status = %d, want 403", got.Status)
		}
	})

	t.Run("tampered flow", func(t *testing.T) {
		b := newBrowser(t)
		form := testsupport.HiddenInputs(t, b.Get(authURL(env, validAuthParams(clientID))).Body)
		flow := []byte(form.Get("flow"))
		flow[len(flow)/2] ^= 1
		form.Set("flow", string(flow))
		form.Set("username", "kim")
		form.Set("password", password)
		got := b.PostForm(env.issuer+"/login", form)
		if got.Status != http.StatusBadRequest || got.Location != "" {
			t.Errorf("status = %d, Location %q; want 400 without redirect", got.Status, got.Location)
		}
	})

	t.Run("session cookie attributes", func(t *testing.T) {
		b := newBrowser(t)
		loginPage := b.Get(authURL(env, validAuthParams(clientID)))
		form := testsupport.HiddenInputs(t, loginPage.Body)
		form.Set("username", "kim")
		form.Set("password", password)
		req, _ := http.NewRequest(http.MethodPost, env.issuer+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultTransport.RoundTrip(withCookies(b, req, env))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var found bool
		for _, cookie := range resp.Cookies() {
			if cookie.Name == "latchkey_session" {
				found = true
				if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
					t.Errorf("session cookie HttpOnly=%t SameSite=%v, want HttpOnly and Lax", cookie.HttpOnly, cookie.SameSite)
				}
			}
		}
		if !found {
			t.Errorf("login (status %d) set no session cookie", resp.StatusCode)
		}
	})
}

func sessionCookieOf(b *browser, env *testEnv) string {
	u, _ := url.Parse(env.issuer)
	for _, cookie := range b.Client.Jar.Cookies(u) {
		if cookie.Name == "latchkey_session" {
			return cookie.Value
		}
	}
	return ""
}

// withCookies adds the browser's cookies to a request sent without the
// client, so that the raw Set-Cookie headers of the response can be read.
func withCookies(b *browser, req *http.Request, _ *testEnv) *http.Request {
	for _, cookie := range b.Client.Jar.Cookies(req.URL) {
		req.AddCookie(cookie)
	}
	return req
}
