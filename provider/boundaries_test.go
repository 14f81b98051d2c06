package provider_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
)

func TestSidIsNotTheSessionCookie(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	otherClientID, _ := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "quentin")
	rp := newRelyingParty(t, env, clientID, secret)

	b := newBrowser(t)
	verifier, _ := pkcePair()
	code := rp.signIn(t, env, b, "quentin", password, verifier, "nonce-sid-check")
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, claims := decodeJWT(t, token.Extra("id_token").(string))
	sid, _ := claims["sid"].(string)
	cookie := sessionCookieOf(b, env)
	if sid == "" || cookie == "" {
		t.Fatalf("sid %q, session cookie %q: want both", sid, cookie)
	}
	if sid == cookie {
		t.Fatal("the sid claim is the session cookie: anyone holding a token could sign in as the user")
	}

	// A browser that sets the sid as its cookie is not signed in.
	attacker := newBrowser(t)
	issuerURL, _ := url.Parse(env.issuer)
	attacker.Client.Jar.SetCookies(issuerURL, []*http.Cookie{{Name: "latchkey_session", Value: sid}})
	params := validAuthParams(otherClientID)
	params.Set("prompt", "none")
	query := testsupport.CallbackParams(t, attacker.Get(authURL(env, params)))
	if query.Get("code") != "" || query.Get("error") != "login_required" {
		t.Errorf("a cookie set to the sid claim signed the attacker in: %v", query)
	}
}

func TestUserinfoRejectsRefreshToken(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "rupert")
	rp := newRelyingParty(t, env, clientID, secret)
	code, verifier := codeFor(t, env, rp, "rupert", password)
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token.RefreshToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("userinfo with a refresh token: %d %q, want 401 invalid_token", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestIntrospectionIsLimitedToTheTokensClient(t *testing.T) {
	env := newTestEnv(t)
	ownerID, ownerSecret := env.createClient(t, clientSpec{audience: []string{"orders-api"}})
	strangerID, strangerSecret := env.createClient(t, clientSpec{})
	resourceID, resourceSecret := env.createClientWithID(t, "orders-api", clientSpec{})

	status, _, token := postForm(t, env.issuer+"/oauth2/token", ownerID, ownerSecret, url.Values{
		"grant_type": {"client_credentials"}, "audience": {"orders-api"},
	})
	if status != http.StatusOK {
		t.Fatalf("client_credentials with audience: %d %v", status, token)
	}
	accessToken := token["access_token"].(string)

	if !introspect(t, env, ownerID, ownerSecret, accessToken) {
		t.Error("the token's own client cannot introspect it")
	}
	if !introspect(t, env, resourceID, resourceSecret, accessToken) {
		t.Error("the resource server named in the token's audience cannot introspect it")
	}
	if introspect(t, env, strangerID, strangerSecret, accessToken) {
		t.Error("an unrelated client learns that another client's token is active")
	}

	req, _ := http.NewRequest(http.MethodPost, env.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {accessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("introspection authenticated with a bearer token: %d, want 401", resp.StatusCode)
	}
}

func TestUserinfoWithoutTokenHasNoErrorCode(t *testing.T) {
	env := newTestEnv(t)
	resp, err := http.Get(env.issuer + "/userinfo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") || strings.Contains(challenge, "error=") {
		t.Errorf("userinfo without a token: %d %q; want 401 with a bare Bearer challenge", resp.StatusCode, challenge)
	}
}

func TestPublicClientRevokesItsToken(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{public: true, firstParty: true})
	otherID, otherSecret := env.createClient(t, clientSpec{})
	_, password := env.createUser(t, "sybil")
	rp := newRelyingParty(t, env, clientID, "")
	code, verifier := codeFor(t, env, rp, "sybil", password)
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	status, _, body := postForm(t, env.issuer+"/oauth2/revoke", otherID, otherSecret, url.Values{"token": {token.RefreshToken}})
	if status == http.StatusOK {
		status, _, body = postForm(t, env.issuer+"/oauth2/token", "", "", url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {token.RefreshToken}, "client_id": {clientID},
		})
		if status != http.StatusOK {
			t.Fatalf("another client revoked this client's refresh token: refresh now gives %d %v", status, body)
		}
		token.RefreshToken = body["refresh_token"].(string)
	}

	status, _, body = postForm(t, env.issuer+"/oauth2/revoke", "", "", url.Values{"token": {token.RefreshToken}, "client_id": {clientID}})
	if status != http.StatusOK {
		t.Fatalf("public client revoking its refresh token: %d %v", status, body)
	}
	status, _, body = postForm(t, env.issuer+"/oauth2/token", "", "", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {token.RefreshToken}, "client_id": {clientID},
	})
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
}

func TestDisabledUserGetsNoTokens(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	user, password := env.createUser(t, "bert")
	rp := newRelyingParty(t, env, clientID, secret)
	ctx := context.Background()

	first, verifier := codeFor(t, env, rp, "bert", password)
	token, err := rp.config.Exchange(ctx, first, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	code, verifier2 := codeFor(t, env, rp, "bert", password)

	if err := env.store.SetUserDisabled(ctx, user.ID, true); err != nil {
		t.Fatal(err)
	}
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testsupport.CallbackURL}, "code_verifier": {verifier2},
	})
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
	status, _, body = postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {token.RefreshToken},
	})
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
}

func TestRefreshCarriesCurrentRoles(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true,
		scopes: []string{"openid", "offline_access", "roles"}})
	user, password := env.createUser(t, "carla")
	ctx := context.Background()
	admin, err := env.store.GetRole(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.store.AssignRole(ctx, user.ID, admin.ID); err != nil {
		t.Fatal(err)
	}
	rp := newRelyingParty(t, env, clientID, secret, "openid", "offline_access", "roles")
	code, verifier := codeFor(t, env, rp, "carla", password)
	token, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, claims := decodeJWT(t, token.AccessToken); !strings.Contains(fmt.Sprint(claims["roles"]), "admin") {
		t.Fatalf("roles before the change = %v", claims["roles"])
	}

	if err := env.store.RemoveRole(ctx, user.ID, admin.ID); err != nil {
		t.Fatal(err)
	}
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {token.RefreshToken},
	})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, body)
	}
	_, accessClaims := decodeJWT(t, body["access_token"].(string))
	_, idClaims := decodeJWT(t, body["id_token"].(string))
	for name, claims := range map[string]map[string]any{"access token": accessClaims, "ID token": idClaims} {
		if roles, ok := claims["roles"].([]any); !ok || len(roles) != 0 {
			t.Errorf("%s roles after the admin role was removed = %v, want []", name, claims["roles"])
		}
	}
}
