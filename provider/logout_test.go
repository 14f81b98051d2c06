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

const postLogoutURL = "http://127.0.0.1:8080/signed-out"

// signedInApp signs a person in to a first-party client in browser b and
// returns the token response.
func signedInApp(t *testing.T, env *testEnv, b *browser, clientID, secret, username, password string) *oauth2.Token {
	t.Helper()
	rp := newRelyingParty(t, env, clientID, secret)
	verifier, _ := pkcePair()
	code := rp.signIn(t, env, b, username, password, verifier, "nonce-logout-"+username)
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func logoutURL(env *testEnv, params url.Values) string {
	return env.issuer + "/oauth2/logout?" + params.Encode()
}

func TestRPInitiatedLogout(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true, postLogout: []string{postLogoutURL}})
	_, password := env.createUser(t, "yara")
	b := newBrowser(t)
	token := signedInApp(t, env, b, clientID, secret, "yara", password)
	idToken := token.Extra("id_token").(string)

	got := b.Get(logoutURL(env, url.Values{
		"id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"logout-state-1"},
	}))
	if got.Status != http.StatusSeeOther || !strings.HasPrefix(got.Location, postLogoutURL) {
		t.Fatalf("logout with a hint for the current session: %d, Location %q; want a redirect", got.Status, got.Location)
	}
	if location, _ := url.Parse(got.Location); location.Query().Get("state") != "logout-state-1" {
		t.Errorf("state not echoed: %s", got.Location)
	}

	params := validAuthParams(clientID)
	params.Set("prompt", "none")
	if query := testsupport.CallbackParams(t, b.Get(authURL(env, params))); query.Get("error") != "login_required" {
		t.Errorf("prompt=none after logout: %v, want login_required", query)
	}
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {token.RefreshToken},
	})
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
}

func TestLogoutRejectsUnregisteredRedirect(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true, postLogout: []string{postLogoutURL}})
	_, password := env.createUser(t, "zack")
	b := newBrowser(t)
	token := signedInApp(t, env, b, clientID, secret, "zack", password)

	got := b.Get(logoutURL(env, url.Values{
		"id_token_hint": {token.Extra("id_token").(string)}, "post_logout_redirect_uri": {"https://attacker.example/"},
	}))
	if got.Status != http.StatusBadRequest || got.Location != "" {
		t.Errorf("unregistered post_logout_redirect_uri: %d, Location %q; want 400 without redirect", got.Status, got.Location)
	}
	params := validAuthParams(clientID)
	params.Set("prompt", "none")
	if query := testsupport.CallbackParams(t, b.Get(authURL(env, params))); query.Get("code") == "" {
		t.Errorf("a rejected logout request ended the session: %v", query)
	}
}

func TestLogoutWithoutHintAsksFirst(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true, postLogout: []string{postLogoutURL}})
	_, password := env.createUser(t, "abby")
	b := newBrowser(t)
	signedInApp(t, env, b, clientID, secret, "abby", password)
	other := newBrowser(t)
	otherToken := signedInApp(t, env, other, clientID, secret, "abby", password)

	cases := map[string]url.Values{
		"missing hint":             {"client_id": {clientID}, "state": {"s-1"}},
		"hint for another session": {"id_token_hint": {otherToken.Extra("id_token").(string)}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"s-1"}},
	}
	for name, params := range cases {
		t.Run(name, func(t *testing.T) {
			confirm := b.Get(logoutURL(env, params))
			if confirm.Status != http.StatusOK || !strings.Contains(confirm.Body, "Sign out?") {
				t.Fatalf("%d: want the confirmation page, got %.200s", confirm.Status, confirm.Body)
			}
			form := testsupport.HiddenInputs(t, confirm.Body)
			form.Set("decision", "stay")
			if got := b.PostForm(env.issuer+"/oauth2/logout", form); got.Status != http.StatusOK || got.Location != "" {
				t.Errorf("staying signed in: %d, Location %q", got.Status, got.Location)
			}
			prompt := validAuthParams(clientID)
			prompt.Set("prompt", "none")
			if query := testsupport.CallbackParams(t, b.Get(authURL(env, prompt))); query.Get("code") == "" {
				t.Errorf("choosing to stay ended the session: %v", query)
			}
		})
	}

	confirm := b.Get(logoutURL(env, cases["missing hint"]))
	form := testsupport.HiddenInputs(t, confirm.Body)
	form.Set("decision", "logout")
	req, _ := http.NewRequest(http.MethodPost, env.issuer+"/oauth2/logout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	got := b.Do(req)
	if got.Status != http.StatusOK || got.Location != "" || !strings.Contains(got.Body, "You are signed out") {
		t.Errorf("confirmed logout without a hint: %d, Location %q; want the signed-out page", got.Status, got.Location)
	}

	prompt := validAuthParams(clientID)
	prompt.Set("prompt", "none")
	if query := testsupport.CallbackParams(t, other.Get(authURL(env, prompt))); query.Get("code") == "" {
		t.Errorf("logging out one browser ended the other's session: %v", query)
	}
}
