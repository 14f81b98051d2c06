package userapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// sessionCookie is the provider's login session cookie on an http issuer.
const sessionCookie = "latchkey_session"

// mfaStatus is the body of GET /v1/me/mfa.
type mfaStatus struct {
	TOTPEnabled          bool `json:"totp_enabled"`
	TOTPPending          bool `json:"totp_pending"`
	BackupCodesRemaining int  `json:"backup_codes_remaining"`
}

// totpStart is the body of POST /v1/me/mfa/totp.
type totpStart struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
	QRCodePNG  string `json:"qr_code_png"`
}

// backupCodeList is the body of the confirmation and of POST
// /v1/me/mfa/backup-codes.
type backupCodeList struct {
	BackupCodes []string `json:"backup_codes"`
}

func TestTOTPEnrolment(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "tessa")
	token := env.signIn(t, env.newBrowser(t), "tessa", password, personScopes...)

	before := env.mfaStatus(t, token.AccessToken)
	if before != (mfaStatus{}) {
		t.Errorf("GET /v1/me/mfa before enrolment = %+v, expected everything off", before)
	}

	started := env.call(t, token.AccessToken, http.MethodPost, "/v1/me/mfa/totp", nil)
	started.ExpectStatus(t, http.StatusCreated)
	if cacheControl := started.Header.Get("Cache-Control"); cacheControl != "no-store" {
		t.Errorf("POST /v1/me/mfa/totp: Cache-Control %q, expected no-store because the body carries the secret", cacheControl)
	}
	var enrolment totpStart
	started.Decode(t, &enrolment)
	if enrolment.Secret == "" {
		t.Fatalf("POST /v1/me/mfa/totp returned no secret: %s", started.Body)
	}

	uri, err := url.Parse(enrolment.OTPAuthURI)
	if err != nil {
		t.Fatalf("otpauth_uri %q is not a URL: %v", enrolment.OTPAuthURI, err)
	}
	if uri.Scheme != "otpauth" || uri.Host != "totp" {
		t.Errorf("otpauth_uri %q, expected otpauth://totp/", enrolment.OTPAuthURI)
	}
	if label := strings.TrimPrefix(uri.Path, "/"); label != "Latchkey:tessa" {
		t.Errorf("otpauth_uri label %q, expected Latchkey:tessa", label)
	}
	wantParameters := map[string]string{
		"issuer": "Latchkey", "algorithm": "SHA1", "digits": "6", "period": "30", "secret": enrolment.Secret,
	}
	for name, want := range wantParameters {
		if got := uri.Query().Get(name); got != want {
			t.Errorf("otpauth_uri parameter %s = %q, expected %q", name, got, want)
		}
	}

	qrCode, err := base64.StdEncoding.DecodeString(enrolment.QRCodePNG)
	if err != nil {
		t.Fatalf("qr_code_png is not base64: %v", err)
	}
	image, err := png.Decode(bytes.NewReader(qrCode))
	if err != nil {
		t.Fatalf("qr_code_png does not decode as PNG: %v", err)
	}
	if bounds := image.Bounds(); bounds.Dx() == 0 || bounds.Dx() != bounds.Dy() {
		t.Errorf("QR code is %dx%d pixels, expected a non-empty square", bounds.Dx(), bounds.Dy())
	}

	pending := env.mfaStatus(t, token.AccessToken)
	if pending != (mfaStatus{TOTPPending: true}) {
		t.Errorf("GET /v1/me/mfa after the start = %+v, expected only totp_pending", pending)
	}

	wrong := env.call(t, token.AccessToken, http.MethodPost, "/v1/me/mfa/totp/confirm",
		map[string]string{"code": testsupport.WrongTOTPCode(t, enrolment.Secret)})
	if fields := wrong.Problem(t, http.StatusBadRequest).Fields(); !slices.Equal(fields, []string{"code"}) {
		t.Errorf("confirmation with a wrong code: problem fields %v, expected [code]", fields)
	}

	code, err := mfa.StepCode(enrolment.Secret, testsupport.CurrentTOTPStep())
	if err != nil {
		t.Fatalf("compute the TOTP code: %v", err)
	}
	confirmed := env.call(t, token.AccessToken, http.MethodPost, "/v1/me/mfa/totp/confirm", map[string]string{"code": code})
	confirmed.ExpectStatus(t, http.StatusOK)
	if cacheControl := confirmed.Header.Get("Cache-Control"); cacheControl != "no-store" {
		t.Errorf("POST /v1/me/mfa/totp/confirm: Cache-Control %q, expected no-store because the body carries backup codes", cacheControl)
	}
	var backup backupCodeList
	confirmed.Decode(t, &backup)
	if len(backup.BackupCodes) != mfa.BackupCodeCount {
		t.Errorf("confirmation returned %d backup codes, expected %d", len(backup.BackupCodes), mfa.BackupCodeCount)
	}
	distinct := map[string]bool{}
	for _, backupCode := range backup.BackupCodes {
		if !mfa.LooksLikeBackupCode(backupCode) {
			t.Errorf("backup code %q would be read as a TOTP code on the MFA page", backupCode)
		}
		distinct[backupCode] = true
	}
	if len(distinct) != len(backup.BackupCodes) {
		t.Errorf("backup codes %v contain duplicates", backup.BackupCodes)
	}

	enabled := env.mfaStatus(t, token.AccessToken)
	if want := (mfaStatus{TOTPEnabled: true, BackupCodesRemaining: mfa.BackupCodeCount}); enabled != want {
		t.Errorf("GET /v1/me/mfa after confirmation = %+v, expected %+v", enabled, want)
	}
	state, err := env.store.GetMFA(context.Background(), user.ID)
	if err != nil {
		t.Fatalf("get MFA state: %v", err)
	}
	if bytes.Contains(state.TOTPSecret, []byte(enrolment.Secret)) {
		t.Error("the store holds the TOTP secret in plain text, expected it sealed")
	}

	env.call(t, token.AccessToken, http.MethodPost, "/v1/me/mfa/totp", nil).Problem(t, http.StatusConflict)
	env.call(t, token.AccessToken, http.MethodPost, "/v1/me/mfa/totp/confirm", map[string]string{"code": code}).
		Problem(t, http.StatusConflict)
}

func TestTOTPLoginAddsSecondFactor(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "otto")
	b := env.newBrowser(t)
	passwordToken := env.signIn(t, b, "otto", password, personScopes...)
	enrolment := env.enrolTOTP(t, passwordToken.AccessToken)

	// RP-initiated logout with the ID token as hint ends the session at
	// once, without a confirmation page.
	idTokenHint, _ := passwordToken.Extra("id_token").(string)
	logoutURL := env.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {idTokenHint}}.Encode()
	if signedOut := b.Get(logoutURL); signedOut.Status != http.StatusOK {
		t.Fatalf("RP-initiated logout: status %d, expected 200: %.300s", signedOut.Status, signedOut.Body)
	}
	if params := env.silentAuthorization(t, b); params.Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: callback %v, expected error=login_required", params)
	}

	mfaPage, state, verifier := env.startMFALogin(t, b, "otto", password)
	codeInput := formInput(t, mfaPage.Body, "code")
	if codeInput == nil {
		t.Fatalf("MFA page has no input named code: %.500s", mfaPage.Body)
	}
	if codeInput["autocomplete"] != "one-time-code" {
		t.Errorf("code input autocomplete = %q, expected one-time-code", codeInput["autocomplete"])
	}
	if b.hasCookie(env.issuer, sessionCookie) {
		t.Errorf("the password alone set the %s cookie", sessionCookie)
	}

	// The confirmation used the code of the current step, so this login
	// uses the next one. MatchTOTP accepts it as clock drift, and replay
	// protection lets it through because it is later.
	code := env.nextTOTPCode(t, user.ID, enrolment.secret)
	token := env.client.ExchangeCode(t, testsupport.CallbackParams(t, b.SubmitMFACode(env.issuer, mfaPage, code)), state, verifier)
	if !b.hasCookie(env.issuer, sessionCookie) {
		t.Errorf("no %s cookie after the second factor", sessionCookie)
	}

	idToken, _ := token.Extra("id_token").(string)
	for name, claims := range map[string]map[string]any{
		"ID token": testsupport.JWTPayload(t, idToken), "access token": testsupport.JWTPayload(t, token.AccessToken),
	} {
		if amr := testsupport.StringsClaim(claims["amr"]); !slices.Equal(amr, []string{"pwd", "otp"}) {
			t.Errorf("%s amr = %v, expected [pwd otp]", name, claims["amr"])
		}
		if claims["acr"] != provider.ACRMFA {
			t.Errorf("%s acr = %v, expected %s", name, claims["acr"], provider.ACRMFA)
		}
	}

	logins, err := env.store.ListAuditEvents(context.Background(), storage.AuditFilter{
		Subject: user.ID, Action: "login", Outcome: storage.OutcomeSuccess, Limit: 1,
	})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	if len(logins) != 1 || logins[0].Details["second_factor"] != "totp" {
		t.Errorf("newest successful login event = %+v, expected details.second_factor totp", logins)
	}

	// The same code in a new login attempt is a replay, although it is
	// still inside the window MatchTOTP accepts.
	replayBrowser := env.newBrowser(t)
	replayPage, _, _ := env.startMFALogin(t, replayBrowser, "otto", password)
	replayed := replayBrowser.SubmitMFACode(env.issuer, replayPage, code)
	expectCodeRejected(t, replayBrowser, env.issuer, replayed, "replayed TOTP code", "already used")
	if reasons := env.mfaFailureReasons(t, user.ID); !slices.Equal(reasons, []string{"replayed_code"}) {
		t.Errorf("mfa.failed reasons = %v, expected [replayed_code]", reasons)
	}
	// A right code of a used step gives a guesser no information, so it is
	// not counted towards the lock.
	mfaState, err := env.store.GetMFA(context.Background(), user.ID)
	if err != nil {
		t.Fatalf("get MFA state: %v", err)
	}
	if mfaState.FailedCodes != 0 {
		t.Errorf("counted code checks after a replay = %d, expected 0", mfaState.FailedCodes)
	}
}

func TestBackupCodeWorksOnce(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "bea")
	personToken := env.signIn(t, env.newBrowser(t), "bea", password, personScopes...)
	enrolment := env.enrolTOTP(t, personToken.AccessToken)
	firstCode := enrolment.backupCodes[0]

	b := env.newBrowser(t)
	mfaPage, state, verifier := env.startMFALogin(t, b, "bea", password)
	token := env.client.ExchangeCode(t, testsupport.CallbackParams(t, b.SubmitMFACode(env.issuer, mfaPage, firstCode)), state, verifier)
	idToken, _ := token.Extra("id_token").(string)
	claims := testsupport.JWTPayload(t, idToken)
	if amr := testsupport.StringsClaim(claims["amr"]); !slices.Equal(amr, []string{"pwd", "otp"}) {
		t.Errorf("ID token amr after a backup code = %v, expected [pwd otp]", claims["amr"])
	}
	if claims["acr"] != provider.ACRMFA {
		t.Errorf("ID token acr after a backup code = %v, expected %s", claims["acr"], provider.ACRMFA)
	}

	reuseBrowser := env.newBrowser(t)
	reusePage, _, _ := env.startMFALogin(t, reuseBrowser, "bea", password)
	reused := reuseBrowser.SubmitMFACode(env.issuer, reusePage, firstCode)
	expectCodeRejected(t, reuseBrowser, env.issuer, reused, "used backup code")
	if reasons := env.mfaFailureReasons(t, user.ID); !slices.Equal(reasons, []string{"wrong_backup_code"}) {
		t.Errorf("mfa.failed reasons = %v, expected [wrong_backup_code]", reasons)
	}
	status := env.mfaStatus(t, personToken.AccessToken)
	if status.BackupCodesRemaining != mfa.BackupCodeCount-1 {
		t.Errorf("backup_codes_remaining after one use = %d, expected %d", status.BackupCodesRemaining, mfa.BackupCodeCount-1)
	}

	// A token from the sign-in before TOTP was on did not pass the second
	// factor, so it cannot replace the codes.
	refused := env.call(t, personToken.AccessToken, http.MethodPost, "/v1/me/mfa/backup-codes", nil)
	refused.ExpectStatus(t, http.StatusUnauthorized)
	if challenge := refused.Header.Get("WWW-Authenticate"); !strings.Contains(challenge, `acr_values="`+provider.ACRMFA+`"`) {
		t.Errorf("WWW-Authenticate = %q, expected acr_values naming %s", challenge, provider.ACRMFA)
	}

	// The backup-code sign-in was seconds ago and passed the second
	// factor, as replacing the codes requires.
	regenerated := env.call(t, token.AccessToken, http.MethodPost, "/v1/me/mfa/backup-codes", nil)
	regenerated.ExpectStatus(t, http.StatusOK)
	var fresh backupCodeList
	regenerated.Decode(t, &fresh)
	if len(fresh.BackupCodes) != mfa.BackupCodeCount {
		t.Fatalf("regeneration returned %d backup codes, expected %d", len(fresh.BackupCodes), mfa.BackupCodeCount)
	}
	for _, code := range fresh.BackupCodes {
		if slices.Contains(enrolment.backupCodes, code) {
			t.Errorf("regenerated backup code %q was also in the first set", code)
		}
	}
	if status := env.mfaStatus(t, personToken.AccessToken); status.BackupCodesRemaining != mfa.BackupCodeCount {
		t.Errorf("backup_codes_remaining after regeneration = %d, expected %d", status.BackupCodesRemaining, mfa.BackupCodeCount)
	}

	oldBrowser := env.newBrowser(t)
	oldPage, _, _ := env.startMFALogin(t, oldBrowser, "bea", password)
	unusedOld := oldBrowser.SubmitMFACode(env.issuer, oldPage, enrolment.backupCodes[1])
	expectCodeRejected(t, oldBrowser, env.issuer, unusedOld, "unused backup code of the replaced set")

	// Backup codes ignore case, so one typed in capitals works too.
	regeneratedBrowser := env.newBrowser(t)
	regeneratedPage, state, verifier := env.startMFALogin(t, regeneratedBrowser, "bea", password)
	capitals := regeneratedBrowser.SubmitMFACode(env.issuer, regeneratedPage, strings.ToUpper(fresh.BackupCodes[0]))
	env.client.ExchangeCode(t, testsupport.CallbackParams(t, capitals), state, verifier)
}

func TestPasswordStepGrantsNothing(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, password := env.createUser(t, "sam")
	personToken := env.signIn(t, env.newBrowser(t), "sam", password, personScopes...)
	env.enrolTOTP(t, personToken.AccessToken)

	// The password is submitted without following the redirect, so that
	// the response of the password step itself can be checked.
	b := env.newBrowser(t)
	authURL, _, _ := env.client.AuthorizationURL(personScopes)
	loginForm := testsupport.HiddenInputs(t, b.Get(authURL).Body)
	loginForm.Set("username", "sam")
	loginForm.Set("password", password)
	passwordStep := b.postFormWithoutRedirect(env.issuer+"/login", loginForm)
	if passwordStep.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login: status %d, expected 303 to the MFA page", passwordStep.StatusCode)
	}
	next, err := url.Parse(passwordStep.Header.Get("Location"))
	if err != nil || next.Path != "/login/mfa" || next.Query().Get("flow") == "" {
		t.Fatalf("POST /login redirected to %q, expected /login/mfa?flow=...", passwordStep.Header.Get("Location"))
	}
	if cacheControl := passwordStep.Header.Get("Cache-Control"); cacheControl != "no-store" {
		t.Errorf("POST /login: Cache-Control %q on the redirect to the MFA page, expected no-store", cacheControl)
	}
	for _, cookie := range passwordStep.Cookies() {
		if cookie.Name == sessionCookie {
			t.Errorf("POST /login set the %s cookie before the second factor", sessionCookie)
		}
	}
	if b.hasCookie(env.issuer, sessionCookie) {
		t.Fatalf("the password step left a %s cookie, expected none before the second factor", sessionCookie)
	}

	issuer, err := url.Parse(env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	mfaPage := b.Get(issuer.ResolveReference(next).String())
	if mfaPage.Status != http.StatusOK {
		t.Fatalf("GET %s: status %d, expected the MFA page: %.300s", next.Path, mfaPage.Status, mfaPage.Body)
	}
	form := testsupport.HiddenInputs(t, mfaPage.Body)
	sealedFlow, csrfToken := form.Get("flow"), form.Get("csrf_token")
	if sealedFlow == "" || csrfToken == "" {
		t.Fatalf("MFA page has no flow or csrf_token: %.500s", mfaPage.Body)
	}
	if fromURL := mfaPage.URL.Query().Get("flow"); fromURL != sealedFlow {
		t.Errorf("MFA page URL carries flow %.40q, the form %.40q; expected the same sealed flow", fromURL, sealedFlow)
	}

	// The sealed flow of the MFA step is a valid flow, so a page that
	// trusted it without a login session would finish the request.
	consentForm := url.Values{"flow": {sealedFlow}, "csrf_token": {csrfToken}, "decision": {"allow"}}
	posted := b.PostForm(env.issuer+"/consent", consentForm)
	expectNoCode(t, posted, "POST /consent with the flow of the MFA step")
	consentPage := b.Get(env.issuer + "/consent?flow=" + url.QueryEscape(sealedFlow))
	expectNoCode(t, consentPage, "GET /consent with the flow of the MFA step")
	loginPosted := b.PostForm(env.issuer+"/login", url.Values{"flow": {sealedFlow}, "csrf_token": {csrfToken}})
	expectNoCode(t, loginPosted, "POST /login with the flow of the MFA step and no password")

	if params := env.silentAuthorization(t, b); params.Get("error") != "login_required" {
		t.Errorf("prompt=none after the password step: callback %v, expected error=login_required", params)
	}
	authURL, _, _ = env.client.AuthorizationURL(personScopes)
	if again := b.Get(authURL); again.URL.Path != "/login" {
		t.Errorf("authorization request after the password step led to %s, expected the login page", again.URL)
	}
	if b.hasCookie(env.issuer, sessionCookie) {
		t.Errorf("the %s cookie appeared without a second factor", sessionCookie)
	}
}

func TestMFAChangesNeedRecentAuthentication(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, password := env.createUser(t, "rhea")
	b := env.newBrowser(t)
	firstToken := env.signIn(t, b, "rhea", password, personScopes...)
	idToken, _ := firstToken.Extra("id_token").(string)
	sid, _ := testsupport.JWTPayload(t, idToken)["sid"].(string)
	if sid == "" {
		t.Fatalf("ID token has no sid: %v", testsupport.JWTPayload(t, idToken))
	}

	// Instead of waiting ten minutes, the test moves the login session's
	// auth_time back with Elevate, the session store call that records a
	// second factor. A prompt=none request then makes the provider issue a
	// token from that session through the real authorization path, so the
	// token carries the old auth_time.
	authTime := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Second)
	if err := env.sessions.Elevate(context.Background(), sid, []string{"pwd"}, authTime); err != nil {
		t.Fatalf("move the auth_time of session %s back: %v", sid, err)
	}
	authURL, state, verifier := env.client.AuthorizationURL(personScopes, oauth2.SetAuthURLParam("prompt", "none"))
	oldToken := env.client.ExchangeCode(t, testsupport.CallbackParams(t, b.Get(authURL)), state, verifier)
	if got := testsupport.JWTPayload(t, oldToken.AccessToken)["auth_time"]; got != float64(authTime.Unix()) {
		t.Fatalf("access token auth_time = %v, expected %d from the aged session", got, authTime.Unix())
	}

	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/v1/me/mfa/totp", nil},
		{http.MethodPost, "/v1/me/mfa/totp/confirm", map[string]string{"code": "123456"}},
		{http.MethodPost, "/v1/me/mfa/backup-codes", nil},
		{http.MethodDelete, "/v1/me/mfa/totp", nil},
	}
	for _, route := range routes {
		response := env.call(t, oldToken.AccessToken, route.method, route.path, route.body)
		response.Problem(t, http.StatusUnauthorized)
		challenge := response.Header.Get("WWW-Authenticate")
		for _, want := range []string{"Bearer ", `error="insufficient_user_authentication"`, "max_age=300"} {
			if !strings.Contains(challenge, want) {
				t.Errorf("%s %s with a 10-minute-old sign-in: WWW-Authenticate %q, expected it to contain %s", route.method, route.path, challenge, want)
			}
		}
	}
	env.call(t, oldToken.AccessToken, http.MethodGet, "/v1/me/mfa", nil).ExpectStatus(t, http.StatusOK)

	// The client follows the challenge of RFC 9470: max_age=300 makes the
	// provider ask for the password again, and the new token is accepted.
	authURL, state, verifier = env.client.AuthorizationURL(personScopes, oauth2.SetAuthURLParam("max_age", "300"))
	loginPage := b.Get(authURL)
	if loginPage.URL.Path != "/login" {
		t.Fatalf("max_age=300 with a 10-minute-old sign-in led to %s, expected the login page", loginPage.URL)
	}
	freshToken := env.client.ExchangeCode(t, testsupport.CallbackParams(t, b.Login(env.issuer, loginPage, "rhea", password)), state, verifier)
	env.call(t, freshToken.AccessToken, http.MethodPost, "/v1/me/mfa/totp", nil).ExpectStatus(t, http.StatusCreated)
}

func TestMFALocksAfterWrongCodes(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "wade")
	personToken := env.signIn(t, env.newBrowser(t), "wade", password, personScopes...)
	enrolment := env.enrolTOTP(t, personToken.AccessToken)
	wrongCode := testsupport.WrongTOTPCode(t, enrolment.secret)

	b := env.newBrowser(t)
	form, _, _ := env.startMFALogin(t, b, "wade", password)
	for attempt := 1; attempt < provider.MaxMFAFailures; attempt++ {
		form = b.SubmitMFACode(env.issuer, form, wrongCode)
		if form.Status != http.StatusBadRequest {
			t.Fatalf("wrong code %d: status %d, expected 400: %.300s", attempt, form.Status, form.Body)
		}
		if !strings.Contains(form.Body, "Invalid code") {
			t.Errorf("wrong code %d: page shows no error: %.500s", attempt, form.Body)
		}
	}
	last := b.SubmitMFACode(env.issuer, form, wrongCode)
	if last.Status != http.StatusTooManyRequests {
		t.Fatalf("wrong code %d: status %d, expected 429: %.300s", provider.MaxMFAFailures, last.Status, last.Body)
	}
	if !strings.Contains(last.Body, "Too many wrong codes") {
		t.Errorf("wrong code %d: page does not say the step is locked: %.500s", provider.MaxMFAFailures, last.Body)
	}
	// The lock ended this login attempt, so its form no longer works.
	ended := b.SubmitMFACode(env.issuer, form, env.nextTOTPCode(t, user.ID, enrolment.secret))
	if ended.Status != http.StatusBadRequest || !strings.Contains(ended.Body, "This sign-in attempt has ended") {
		t.Errorf("code in the ended attempt: status %d, expected 400 saying the attempt ended: %.300s", ended.Status, ended.Body)
	}

	state, err := env.store.GetMFA(context.Background(), user.ID)
	if err != nil {
		t.Fatalf("get MFA state: %v", err)
	}
	if !state.LockedUntil.After(time.Now()) {
		t.Errorf("MFA locked until %v, expected a time in the future", state.LockedUntil)
	}

	// A new attempt with the right password and the right code is still
	// rejected while the lock lasts.
	lockedBrowser := env.newBrowser(t)
	lockedPage, _, _ := env.startMFALogin(t, lockedBrowser, "wade", password)
	locked := lockedBrowser.SubmitMFACode(env.issuer, lockedPage, env.nextTOTPCode(t, user.ID, enrolment.secret))
	if locked.Status != http.StatusTooManyRequests {
		t.Errorf("correct code while locked: status %d, expected 429: %.300s", locked.Status, locked.Body)
	}
	if !strings.Contains(locked.Body, "locked") {
		t.Errorf("correct code while locked: page does not say the step is locked: %.500s", locked.Body)
	}
	if lockedBrowser.hasCookie(env.issuer, sessionCookie) {
		t.Errorf("a code accepted while locked set the %s cookie", sessionCookie)
	}
	after, err := env.store.GetMFA(context.Background(), user.ID)
	if err != nil {
		t.Fatalf("get MFA state: %v", err)
	}
	if after.LastStep != state.LastStep {
		t.Errorf("last accepted TOTP step moved from %d to %d while locked, expected the code not to be checked", state.LastStep, after.LastStep)
	}

	wantReasons := slices.Repeat([]string{"wrong_code"}, provider.MaxMFAFailures)
	wantReasons = append(wantReasons, "locked")
	if reasons := env.mfaFailureReasons(t, user.ID); !slices.Equal(reasons, wantReasons) {
		t.Errorf("mfa.failed reasons oldest first = %v, expected %v", reasons, wantReasons)
	}
	lockEvents, err := env.store.ListAuditEvents(context.Background(), storage.AuditFilter{
		Subject: user.ID, Action: "mfa.locked", Limit: 10,
	})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	if len(lockEvents) != 1 {
		t.Errorf("%d mfa.locked events, expected 1", len(lockEvents))
	}
}

func TestMFALockCountsParallelAttempts(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "pia")
	personToken := env.signIn(t, env.newBrowser(t), "pia", password, personScopes...)
	enrolment := env.enrolTOTP(t, personToken.AccessToken)
	wrongCode := testsupport.WrongTOTPCode(t, enrolment.secret)

	// Two attempts open at once share the limit, so that opening more
	// attempts gives no more guesses.
	browsers := []*browser{env.newBrowser(t), env.newBrowser(t)}
	forms := make([]*testsupport.Page, len(browsers))
	for i, b := range browsers {
		forms[i], _, _ = env.startMFALogin(t, b, "pia", password)
	}
	for attempt := 1; attempt < provider.MaxMFAFailures; attempt++ {
		i := attempt % len(browsers)
		forms[i] = browsers[i].SubmitMFACode(env.issuer, forms[i], wrongCode)
		if forms[i].Status != http.StatusBadRequest {
			t.Fatalf("wrong code %d, in attempt %d: status %d, expected 400: %.300s", attempt, i, forms[i].Status, forms[i].Body)
		}
	}
	i := provider.MaxMFAFailures % len(browsers)
	last := browsers[i].SubmitMFACode(env.issuer, forms[i], wrongCode)
	if last.Status != http.StatusTooManyRequests {
		t.Fatalf("wrong code %d across two attempts: status %d, expected 429: %.300s", provider.MaxMFAFailures, last.Status, last.Body)
	}

	other := (i + 1) % len(browsers)
	locked := browsers[other].SubmitMFACode(env.issuer, forms[other], env.nextTOTPCode(t, user.ID, enrolment.secret))
	if locked.Status != http.StatusTooManyRequests {
		t.Errorf("correct code in the other attempt after the lock: status %d, expected 429: %.300s", locked.Status, locked.Body)
	}
	if browsers[other].hasCookie(env.issuer, sessionCookie) {
		t.Errorf("the other attempt set the %s cookie after the lock", sessionCookie)
	}
}

func TestAdminResetsMFA(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "lena")
	personToken := env.signIn(t, env.newBrowser(t), "lena", password, personScopes...)
	env.enrolTOTP(t, personToken.AccessToken)

	// An attempt that is waiting for its second factor when the reset
	// happens cannot finish with a code afterwards.
	waiting := env.newBrowser(t)
	waitingPage, _, _ := env.startMFALogin(t, waiting, "lena", password)

	env.call(t, personToken.AccessToken, http.MethodDelete, "/v1/users/"+user.ID+"/mfa", nil).Problem(t, http.StatusForbidden)
	env.call(t, adminToken.AccessToken, http.MethodDelete, "/v1/users/"+user.ID+"/mfa", nil).ExpectStatus(t, http.StatusNoContent)

	if status := env.mfaStatus(t, personToken.AccessToken); status != (mfaStatus{}) {
		t.Errorf("GET /v1/me/mfa after the reset = %+v, expected everything off", status)
	}
	stale := waiting.SubmitMFACode(env.issuer, waitingPage, "123456")
	expectNoCode(t, stale, "code for an attempt started before the reset")

	token := env.signIn(t, env.newBrowser(t), "lena", password, personScopes...)
	idToken, _ := token.Extra("id_token").(string)
	claims := testsupport.JWTPayload(t, idToken)
	if amr := testsupport.StringsClaim(claims["amr"]); !slices.Equal(amr, []string{"pwd"}) {
		t.Errorf("ID token amr after the reset = %v, expected [pwd]", claims["amr"])
	}
	if claims["acr"] != provider.ACRPassword {
		t.Errorf("ID token acr after the reset = %v, expected %s", claims["acr"], provider.ACRPassword)
	}

	resets, err := env.store.ListAuditEvents(context.Background(), storage.AuditFilter{
		Subject: user.ID, Action: "mfa.reset", Limit: 10,
	})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	if len(resets) != 1 || resets[0].ActorID != admin.ID {
		t.Errorf("mfa.reset events = %+v, expected one by the admin %s", resets, admin.ID)
	}
}

// totpEnrolment is a confirmed TOTP enrolment: the secret an authenticator
// app holds and the backup codes the person was shown.
type totpEnrolment struct {
	secret      string
	backupCodes []string
}

// enrolTOTP turns TOTP on through the user API for the person of
// accessToken, confirming with the code of the current step.
func (e *testEnv) enrolTOTP(t testing.TB, accessToken string) totpEnrolment {
	t.Helper()
	started := e.call(t, accessToken, http.MethodPost, "/v1/me/mfa/totp", nil)
	started.ExpectStatus(t, http.StatusCreated)
	var enrolment totpStart
	started.Decode(t, &enrolment)

	code := testsupport.TOTPCode(t, enrolment.Secret, testsupport.CurrentTOTPStep())
	confirmed := e.call(t, accessToken, http.MethodPost, "/v1/me/mfa/totp/confirm", map[string]string{"code": code})
	confirmed.ExpectStatus(t, http.StatusOK)
	var backup backupCodeList
	confirmed.Decode(t, &backup)
	if len(backup.BackupCodes) == 0 {
		t.Fatalf("confirmation returned no backup codes: %s", confirmed.Body)
	}
	return totpEnrolment{secret: enrolment.Secret, backupCodes: backup.BackupCodes}
}

// mfaStatus returns GET /v1/me/mfa.
func (e *testEnv) mfaStatus(t testing.TB, accessToken string) mfaStatus {
	t.Helper()
	response := e.call(t, accessToken, http.MethodGet, "/v1/me/mfa", nil)
	response.ExpectStatus(t, http.StatusOK)
	var status mfaStatus
	response.Decode(t, &status)
	return status
}

// nextTOTPCode returns the code of the step after the last one the
// provider accepted for userID. Replay protection accepts it once, and
// MatchTOTP accepts it as clock drift for about a minute after the last
// step began.
func (e *testEnv) nextTOTPCode(t testing.TB, userID, secret string) string {
	t.Helper()
	state, err := e.store.GetMFA(context.Background(), userID)
	if err != nil {
		t.Fatalf("get MFA state of %s: %v", userID, err)
	}
	return testsupport.TOTPCode(t, secret, state.LastStep+1)
}

// startMFALogin sends an authorization request from b and submits the
// password. It checks that the provider responds with the MFA page and
// returns that page with the request's state and PKCE verifier.
func (e *testEnv) startMFALogin(t testing.TB, b *browser, username, password string) (mfaPage *testsupport.Page, state, verifier string) {
	t.Helper()
	authURL, state, verifier := e.client.AuthorizationURL(personScopes)
	mfaPage = b.Login(e.issuer, b.Get(authURL), username, password)
	if mfaPage.URL.Path != "/login/mfa" || mfaPage.Status != http.StatusOK {
		t.Fatalf("password of %s: expected the MFA page, got %d at %s: %.300s", username, mfaPage.Status, mfaPage.URL, mfaPage.Body)
	}
	return mfaPage, state, verifier
}

// postFormWithoutRedirect submits form to rawURL with b's cookies and
// returns the response as it came, redirect included, with its body closed.
func (b *browser) postFormWithoutRedirect(rawURL string, form url.Values) *http.Response {
	b.T.Helper()
	client := &http.Client{
		Jar:     b.Client.Jar,
		Timeout: b.Client.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		b.T.Fatalf("POST %s: %v", rawURL, err)
	}
	resp.Body.Close()
	return resp
}

// hasCookie reports whether b holds a cookie named name for issuer.
func (b *browser) hasCookie(issuer, name string) bool {
	b.T.Helper()
	u, err := url.Parse(issuer)
	if err != nil {
		b.T.Fatal(err)
	}
	for _, cookie := range b.Client.Jar.Cookies(u) {
		if cookie.Name == name && cookie.Value != "" {
			return true
		}
	}
	return false
}

// expectCodeRejected checks that the MFA page rejected a code with 400,
// showed the error on the form again and started no session.
func expectCodeRejected(t testing.TB, b *browser, issuer string, result *testsupport.Page, description string, message ...string) {
	t.Helper()
	if result.Status != http.StatusBadRequest {
		t.Errorf("%s: status %d, expected 400: %.300s", description, result.Status, result.Body)
	}
	if result.Location != "" {
		t.Errorf("%s: redirected to %q, expected the MFA page again", description, result.Location)
	}
	want := "Invalid code"
	if len(message) > 0 {
		want = message[0]
	}
	if !strings.Contains(result.Body, want) {
		t.Errorf("%s: page does not show %q: %.500s", description, want, result.Body)
	}
	if b.hasCookie(issuer, sessionCookie) {
		t.Errorf("%s: the %s cookie was set", description, sessionCookie)
	}
}

// expectNoCode checks that a response is an error page, not a redirect that
// could carry an authorization code.
func expectNoCode(t testing.TB, result *testsupport.Page, description string) {
	t.Helper()
	if result.Location != "" {
		t.Errorf("%s: redirected to %q, expected an error page", description, result.Location)
	}
	if result.Status != http.StatusBadRequest {
		t.Errorf("%s: status %d, expected 400: %.300s", description, result.Status, result.Body)
	}
}

// mfaFailureReasons returns details.reason of the user's mfa.failed audit
// events, oldest first.
func (e *testEnv) mfaFailureReasons(t testing.TB, userID string) []string {
	t.Helper()
	events, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{
		Subject: userID, Action: "mfa.failed", Limit: 100,
	})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	reasons := make([]string, 0, len(events))
	for _, event := range slices.Backward(events) {
		reason, _ := event.Details["reason"].(string)
		reasons = append(reasons, reason)
	}
	return reasons
}

// formInput returns the attributes of the input named name on a page, or
// nil when there is none.
func formInput(t testing.TB, body, name string) map[string]string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	for node := range doc.Descendants() {
		if node.Type != html.ElementNode || node.Data != "input" {
			continue
		}
		attributes := map[string]string{}
		for _, attribute := range node.Attr {
			attributes[attribute.Key] = attribute.Val
		}
		if attributes["name"] == name {
			return attributes
		}
	}
	return nil
}
