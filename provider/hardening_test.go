package provider_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
)

func TestRedirectURIMatchesExactly(t *testing.T) {
	env := newTestEnv(t)
	confidentialID, _ := env.createClient(t, clientSpec{})
	publicID, _ := env.createClient(t, clientSpec{public: true})

	variants := []string{
		"http://127.0.0.1:8081/callback",
		"http://127.0.0.1/callback",
		"http://evil@127.0.0.1:8080/callback",
		"http://127.0.0.1:8080/%63allback",
		"HTTP://127.0.0.1:08080/callback",
	}
	for _, redirect := range variants {
		params := validAuthParams(confidentialID)
		params.Set("redirect_uri", redirect)
		got := newBrowser(t).Get(authURL(env, params))
		if got.Status != http.StatusBadRequest || got.Location != "" {
			t.Errorf("confidential client, redirect_uri %s: %d, Location %q; want 400 without redirect", redirect, got.Status, got.Location)
		}
	}

	params := validAuthParams(publicID)
	params.Set("redirect_uri", "http://127.0.0.1:53682/callback")
	if got := newBrowser(t).Get(authURL(env, params)); got.URL.Path != "/login" {
		t.Errorf("public client on another loopback port: %d at %s, want the login page (RFC 8252)", got.Status, got.URL)
	}
	for _, redirect := range variants[2:] {
		params := validAuthParams(publicID)
		params.Set("redirect_uri", redirect)
		if got := newBrowser(t).Get(authURL(env, params)); got.Status != http.StatusBadRequest {
			t.Errorf("public client, redirect_uri %s: %d, want 400", redirect, got.Status)
		}
	}
}

func TestRepeatedParametersAreRejected(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})

	query := validAuthParams(clientID).Encode() + "&state=second-state-value"
	if got := newBrowser(t).Get(env.issuer + "/oauth2/auth?" + query); got.Status != http.StatusBadRequest || got.Location != "" {
		t.Errorf("repeated state: %d, Location %q; want 400", got.Status, got.Location)
	}

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read", "api:read"}}
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, form)
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_request")

	otherID, _ := env.createClient(t, clientSpec{})
	status, _, body = postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {otherID},
	})
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_request")
}

func TestCrossSiteFormPostIsRejected(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{})
	_, password := env.createUser(t, "trent")

	b := newBrowser(t)
	form := testsupport.HiddenInputs(t, b.Get(authURL(env, validAuthParams(clientID))).Body)
	form.Set("username", "trent")
	form.Set("password", password)
	req, _ := http.NewRequest(http.MethodPost, env.issuer+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if got := b.Do(req); got.Status != http.StatusForbidden {
		t.Errorf("login posted from another origin: %d, want 403", got.Status)
	}
}

func TestMiscellaneousSpecRules(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	publicID, _ := env.createClient(t, clientSpec{public: true})
	_, password := env.createUser(t, "uma")

	t.Run("prompt none with login", func(t *testing.T) {
		params := validAuthParams(clientID)
		params.Set("prompt", "none login")
		query := testsupport.CallbackParams(t, newBrowser(t).Get(authURL(env, params)))
		if query.Get("error") != "invalid_request" {
			t.Errorf("error = %q, want invalid_request", query.Get("error"))
		}
	})

	t.Run("revocation without token", func(t *testing.T) {
		status, _, body := postForm(t, env.issuer+"/oauth2/revoke", clientID, secret, url.Values{"token": {""}})
		expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_request")
	})

	t.Run("client credentials without person scopes", func(t *testing.T) {
		status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
			"grant_type": {"client_credentials"}, "scope": {"profile email api:read"},
		})
		if status != http.StatusOK {
			t.Fatalf("client_credentials: %d %v", status, body)
		}
		if body["scope"] != "api:read" {
			t.Errorf("granted scope = %v, want only api:read", body["scope"])
		}
	})

	t.Run("public client asking for client credentials", func(t *testing.T) {
		status, _, body := postForm(t, env.issuer+"/oauth2/token", "", "", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {publicID},
		})
		if body["error"] != "unauthorized_client" && body["error"] != "invalid_client" {
			t.Errorf("error = %v (%d), want unauthorized_client or invalid_client", body["error"], status)
		}
	})

	t.Run("updated_at is whole seconds", func(t *testing.T) {
		rp := newRelyingParty(t, env, clientID, secret, "openid", "profile")
		code, verifier := codeFor(t, env, rp, "uma", password)
		token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		raw := token.Extra("id_token").(string)
		payload := strings.Split(raw, ".")[1]
		decoded, _ := decodeSegment(payload)
		if strings.Contains(decoded, "e+") {
			t.Errorf("ID token has a number in exponent form: %s", decoded)
		}
	})
}
