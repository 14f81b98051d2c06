package provider_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

func TestStepUpElevatesSameSession(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	user, password := env.createUser(t, "mia")
	rp := newRelyingParty(t, env, clientID, secret, oidc.ScopeOpenID, "profile")
	b := newBrowser(t)
	ctx := context.Background()

	verifier, _ := pkcePair()
	code := rp.signIn(t, env, b, "mia", password, verifier, "nonce-step-up-password")
	first := rp.idTokenClaims(t, rp.exchange(t, code, verifier))
	if amr := testsupport.StringsClaim(first["amr"]); !slices.Equal(amr, []string{"pwd"}) {
		t.Errorf("amr after the password = %v, want [pwd]", first["amr"])
	}
	if first["acr"] != provider.ACRPassword {
		t.Errorf("acr after the password = %v, want %s", first["acr"], provider.ACRPassword)
	}
	sid, _ := first["sid"].(string)
	if sid == "" {
		t.Fatalf("ID token has no sid: %v", first)
	}
	firstAuthTime, _ := first["auth_time"].(float64)
	sessionSecret := b.cookieValue(t, env.issuer, "latchkey_session")

	// acr_values is a request, not a rule: a user without a second factor
	// still gets a code, and its ID token's acr is the password class.
	stepUp := oauth2.SetAuthURLParam("acr_values", provider.ACRMFA)
	silent := oauth2.SetAuthURLParam("prompt", "none")
	code, verifier = rp.authorize(t, b, "state-no-factor", stepUp, silent)
	if acr := rp.idTokenClaims(t, rp.exchange(t, code, verifier))["acr"]; acr != provider.ACRPassword {
		t.Errorf("acr for acr_values=%s without a second factor = %v, want %s", provider.ACRMFA, acr, provider.ACRPassword)
	}

	totpSecret := enrolTOTPInStore(t, env, user)

	silentURL, _ := rp.authorizationURL("state-silent-step-up", stepUp, silent)
	params := testsupport.CallbackParams(t, b.Get(silentURL))
	if params.Get("error") != "interaction_required" {
		t.Errorf("prompt=none with acr_values=%s: callback %v, want error=interaction_required", provider.ACRMFA, params)
	}
	if params.Get("state") != "state-silent-step-up" {
		t.Errorf("interaction_required callback state = %q, want state-silent-step-up", params.Get("state"))
	}

	stepUpURL, verifier := rp.authorizationURL("state-step-up", stepUp)
	mfaPage := b.Get(stepUpURL)
	if mfaPage.URL.Path != "/login/mfa" || mfaPage.Status != http.StatusOK {
		t.Fatalf("acr_values=%s on a password session: %d at %s, want the MFA page: %.300s",
			provider.ACRMFA, mfaPage.Status, mfaPage.URL, mfaPage.Body)
	}
	nextCode := testsupport.TOTPCode(t, totpSecret, testsupport.CurrentTOTPStep()+1)
	params = testsupport.CallbackParams(t, b.SubmitMFACode(env.issuer, mfaPage, nextCode))
	if params.Get("code") == "" || params.Get("state") != "state-step-up" {
		t.Fatalf("callback after the second factor = %v, want a code and state-step-up", params)
	}
	if after := b.cookieValue(t, env.issuer, "latchkey_session"); after != sessionSecret {
		t.Error("the step-up replaced the session cookie, want the same session elevated")
	}

	token := rp.exchange(t, params.Get("code"), verifier)
	elevated := rp.idTokenClaims(t, token)
	if elevated["sid"] != sid {
		t.Errorf("sid after the step-up = %v, want %s as before", elevated["sid"], sid)
	}
	if elevated["nonce"] != "nonce-state-step-up" {
		t.Errorf("nonce after the step-up = %v, want nonce-state-step-up", elevated["nonce"])
	}
	_, access := decodeJWT(t, token.AccessToken)
	for name, claims := range map[string]map[string]any{"ID token": elevated, "access token": access} {
		if amr := testsupport.StringsClaim(claims["amr"]); !slices.Equal(amr, []string{"pwd", "otp"}) {
			t.Errorf("%s amr after the step-up = %v, want [pwd otp]", name, claims["amr"])
		}
		if claims["acr"] != provider.ACRMFA {
			t.Errorf("%s acr after the step-up = %v, want %s", name, claims["acr"], provider.ACRMFA)
		}
		if authTime, _ := claims["auth_time"].(float64); authTime < firstAuthTime {
			t.Errorf("%s auth_time after the step-up = %v, want no earlier than %v", name, claims["auth_time"], firstAuthTime)
		}
	}

	logins, err := env.store.ListAuditEvents(ctx, storage.AuditFilter{Subject: user.ID, Action: "login", Limit: 1})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	if len(logins) != 1 || logins[0].Details["step_up"] != true || logins[0].Details["second_factor"] != "totp" {
		t.Errorf("newest login event = %+v, want a step-up with second_factor totp", logins)
	}

	// The elevated session now satisfies the request without interaction,
	// and the acr is the class the client requested.
	pape := oauth2.SetAuthURLParam("acr_values", provider.ACRPAPEMultiFactor)
	code, verifier = rp.authorize(t, b, "state-silent-pape", pape, silent)
	silentClaims := rp.idTokenClaims(t, rp.exchange(t, code, verifier))
	if silentClaims["acr"] != provider.ACRPAPEMultiFactor {
		t.Errorf("acr for acr_values=%s = %v, want it echoed", provider.ACRPAPEMultiFactor, silentClaims["acr"])
	}
	if silentClaims["sid"] != sid {
		t.Errorf("sid of the silent request = %v, want %s", silentClaims["sid"], sid)
	}
}

func TestDiscoveryAdvertisesACR(t *testing.T) {
	env := newTestEnv(t)
	resp, err := http.Get(env.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
	var metadata struct {
		ACRValuesSupported []string `json:"acr_values_supported"`
		ClaimsSupported    []string `json:"claims_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&metadata); err != nil {
		t.Fatalf("decode metadata: %v", err)
	}

	for _, acr := range []string{provider.ACRPassword, provider.ACRMFA, provider.ACRPAPEMultiFactor} {
		if !slices.Contains(metadata.ACRValuesSupported, acr) {
			t.Errorf("acr_values_supported = %v, want it to contain %s", metadata.ACRValuesSupported, acr)
		}
	}
	for _, claim := range []string{"acr", "amr"} {
		if !slices.Contains(metadata.ClaimsSupported, claim) {
			t.Errorf("claims_supported = %v, want it to contain %s", metadata.ClaimsSupported, claim)
		}
	}
}

// enrolTOTPInStore gives user a confirmed TOTP enrolment directly in the
// store, sealed with the codec the provider derives from env's system
// secret, and returns the TOTP secret. The enrolment is recorded as
// confirmed with the code of two steps ago, so that replay protection lets
// a code of the current or the next step through.
func enrolTOTPInStore(t testing.TB, env *testEnv, user *storage.User) string {
	t.Helper()
	ctx := context.Background()
	codec, err := provider.NewMFACodec(env.secret)
	if err != nil {
		t.Fatalf("new MFA codec: %v", err)
	}
	enrollment, err := codec.NewEnrollment("Latchkey", user.Username)
	if err != nil {
		t.Fatalf("new TOTP enrolment: %v", err)
	}
	if err := env.store.SaveTOTPEnrollment(ctx, user.ID, codec.SealSecret(user.ID, enrollment.Secret)); err != nil {
		t.Fatalf("save TOTP enrolment: %v", err)
	}
	_, hashes, err := codec.NewBackupCodes()
	if err != nil {
		t.Fatalf("new backup codes: %v", err)
	}
	if err := env.store.ConfirmTOTP(ctx, user.ID, testsupport.CurrentTOTPStep()-2, hashes); err != nil {
		t.Fatalf("confirm TOTP enrolment: %v", err)
	}
	return enrollment.Secret
}

// cookieValue returns the value of b's cookie named name for issuer, and
// fails the test when there is none.
func (b *browser) cookieValue(t testing.TB, issuer, name string) string {
	t.Helper()
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	for _, cookie := range b.Client.Jar.Cookies(u) {
		if cookie.Name == name {
			return cookie.Value
		}
	}
	t.Fatalf("browser has no %s cookie for %s", name, issuer)
	return ""
}

// authorizationURL returns an authorization request URL with PKCE S256
// and the nonce "nonce-" + state, and the PKCE verifier.
func (rp *relyingParty) authorizationURL(state string, options ...oauth2.AuthCodeOption) (authURL, verifier string) {
	verifier = oauth2.GenerateVerifier()
	options = append(options, oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-"+state))
	return rp.config.AuthCodeURL(state, options...), verifier
}

// authorize sends an authorization request that must finish without a
// page, such as one with prompt=none, and returns the code and the PKCE
// verifier.
func (rp *relyingParty) authorize(t *testing.T, b *browser, state string, options ...oauth2.AuthCodeOption) (code, verifier string) {
	t.Helper()
	authURL, verifier := rp.authorizationURL(state, options...)
	params := testsupport.CallbackParams(t, b.Get(authURL))
	if params.Get("code") == "" || params.Get("state") != state {
		t.Fatalf("authorization request %s: callback %v, want a code and its state", state, params)
	}
	return params.Get("code"), verifier
}

// exchange redeems a code at the token endpoint.
func (rp *relyingParty) exchange(t *testing.T, code, verifier string) *oauth2.Token {
	t.Helper()
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange code: %v", err)
	}
	return token
}

// idTokenClaims verifies the token response's ID token with go-oidc and
// returns its claims.
func (rp *relyingParty) idTokenClaims(t *testing.T, token *oauth2.Token) map[string]any {
	t.Helper()
	raw, _ := token.Extra("id_token").(string)
	idToken, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	var claims map[string]any
	if err := idToken.Claims(&claims); err != nil {
		t.Fatalf("decode ID token claims: %v", err)
	}
	return claims
}
