package sessionapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func TestEndOtherBrowserEverywhere(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "dana")
	browserA := env.newBrowser(t, chromeOnWindows)
	tokenA := env.app.SignIn(t, browserA, "dana", password, personScopes)
	browserB := env.newBrowser(t, firefoxOnLinux)
	tokenB := env.app.SignIn(t, browserB, "dana", password, personScopes)
	sidA, sidB := sessionID(t, tokenA), sessionID(t, tokenB)
	if sidA == sidB {
		t.Fatalf("two browsers share the login session %s", sidA)
	}

	// A replica on the same database and Redis serves B's session before it
	// ends, so that its login_required afterwards means something.
	replicaURL := ""
	if storagetest.Backend() == storagetest.Postgres {
		replicaURL = env.newReplica(t)
		if params := env.silentAuthorization(t, browserB, replicaURL); params.Get("code") == "" {
			t.Fatalf("prompt=none for B at the replica before the logout: callback %v, expected a code", params)
		}
	}

	listed := env.listSessions(t, tokenA.AccessToken, "/v1/sessions")
	if ids := sessionIDs(listed); !slices.Equal(ids, sortedStrings(sidA, sidB)) {
		t.Fatalf("GET /v1/sessions lists %v, expected exactly A's %s and B's %s", ids, sidA, sidB)
	}
	expected := []struct {
		name, sid, userAgent, device, browser string
		current                               bool
	}{
		{"A", sidA, chromeOnWindows, "Desktop, Windows", "Chrome 124", true},
		{"B", sidB, firefoxOnLinux, "Desktop, Linux", "Firefox 125", false},
	}
	for _, want := range expected {
		session := listed[want.sid]
		if session.Current != want.current {
			t.Errorf("session %s: current %v, expected %v", want.name, session.Current, want.current)
		}
		if session.UserID != user.ID {
			t.Errorf("session %s: user_id %q, expected %s", want.name, session.UserID, user.ID)
		}
		if session.UserAgent != want.userAgent {
			t.Errorf("session %s: user_agent %q, expected %q", want.name, session.UserAgent, want.userAgent)
		}
		if session.Device != want.device {
			t.Errorf("session %s: device %q, expected %q", want.name, session.Device, want.device)
		}
		if session.Browser != want.browser {
			t.Errorf("session %s: browser %q, expected %q", want.name, session.Browser, want.browser)
		}
		if session.IPAddress != "127.0.0.1" {
			t.Errorf("session %s: ip_address %q, expected 127.0.0.1", want.name, session.IPAddress)
		}
		if !slices.Equal(session.AMR, []string{"pwd"}) {
			t.Errorf("session %s: amr %v, expected [pwd]", want.name, session.AMR)
		}
		if ids := session.clientIDs(); !slices.Equal(ids, []string{env.app.ID}) {
			t.Errorf("session %s: clients %v, expected [%s]", want.name, ids, env.app.ID)
		}
		if len(session.Clients) == 1 && session.Clients[0].Name != env.app.Name {
			t.Errorf("session %s: client name %q, expected %q", want.name, session.Clients[0].Name, env.app.Name)
		}
		if session.CreatedAt.IsZero() || session.AuthTime.IsZero() || session.LastActiveAt.IsZero() {
			t.Errorf("session %s: created_at %v, auth_time %v, last_active_at %v, expected all set",
				want.name, session.CreatedAt, session.AuthTime, session.LastActiveAt)
		}
		if !session.IdleExpiresAt.After(time.Now()) {
			t.Errorf("session %s: idle_expires_at %v, expected a time in the future", want.name, session.IdleExpiresAt)
		}
		if session.IdleExpiresAt.After(session.ExpiresAt) {
			t.Errorf("session %s: idle_expires_at %v is after expires_at %v", want.name, session.IdleExpiresAt, session.ExpiresAt)
		}
	}

	env.sessionAPI(t, tokenA.AccessToken, http.MethodDelete, "/v1/sessions/"+sidB).ExpectStatus(t, http.StatusNoContent)

	t.Run("B signed out", func(t *testing.T) {
		if params := env.silentAuthorization(t, browserB, env.issuer); params.Get("error") != "login_required" {
			t.Errorf("prompt=none in B: callback %v, expected error=login_required", params)
		}
		status, body := env.app.Refresh(t, tokenB.RefreshToken)
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("B's refresh token: status %d %v, expected 400 invalid_grant", status, body)
		}
		env.userAPI(t, tokenB.AccessToken, http.MethodGet, "/v1/me").ExpectInvalidToken(t)
		env.sessionAPI(t, tokenB.AccessToken, http.MethodGet, "/v1/sessions").ExpectInvalidToken(t)
		if status := env.userinfoStatus(t, tokenB.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("B's access token at the provider's UserInfo endpoint: status %d, expected 401", status)
		}
	})

	if replicaURL != "" {
		t.Run("B signed out at replica", func(t *testing.T) {
			if params := env.silentAuthorization(t, browserB, replicaURL); params.Get("error") != "login_required" {
				t.Errorf("prompt=none for B at the replica: callback %v, expected error=login_required", params)
			}
		})
	}

	t.Run("logout token sent for B", func(t *testing.T) {
		env.waitForLogouts(t)
		received := env.receiver.received()
		if len(received) != 1 {
			t.Fatalf("back-channel receiver got %d logout tokens, expected 1", len(received))
		}
		env.checkLogoutToken(t, env.verifyLogoutToken(t, received[0]), env.app.ID, user.ID, sidB)
	})

	t.Run("A keeps working", func(t *testing.T) {
		if params := env.silentAuthorization(t, browserA, env.issuer); params.Get("code") == "" {
			t.Errorf("prompt=none in A: callback %v, expected a code", params)
		}
		// Checked before the refresh, which revokes A's access token at the
		// provider. The APIs verify it as a JWT and keep accepting it.
		if status := env.userinfoStatus(t, tokenA.AccessToken); status != http.StatusOK {
			t.Errorf("A's access token at the provider's UserInfo endpoint: status %d, expected 200", status)
		}
		status, body := env.app.Refresh(t, tokenA.RefreshToken)
		if status != http.StatusOK {
			t.Errorf("A's refresh token: status %d %v, expected 200", status, body)
		}
		env.userAPI(t, tokenA.AccessToken, http.MethodGet, "/v1/me").ExpectStatus(t, http.StatusOK)
		if ids := sessionIDs(env.listSessions(t, tokenA.AccessToken, "/v1/sessions")); !slices.Equal(ids, []string{sidA}) {
			t.Errorf("GET /v1/sessions after ending B lists %v, expected only A's %s", ids, sidA)
		}
	})

	t.Run("audit event recorded", func(t *testing.T) {
		events := env.sessionEndedEvents(t, user.ID)
		if len(events) != 1 {
			t.Fatalf("%d session.ended events for the user, expected 1", len(events))
		}
		event := events[0]
		if event.ActorType != storage.ActorUser || event.ActorID != user.ID {
			t.Errorf("session.ended actor %s %s, expected the user %s", event.ActorType, event.ActorID, user.ID)
		}
		if event.Outcome != storage.OutcomeSuccess {
			t.Errorf("session.ended outcome %q, expected %q", event.Outcome, storage.OutcomeSuccess)
		}
		if event.Details["reason"] != "user_request" {
			t.Errorf("session.ended reason %v, expected user_request", event.Details["reason"])
		}
		if event.Details["sid"] != sidB {
			t.Errorf("session.ended sid %v, expected B's %s", event.Details["sid"], sidB)
		}
		if event.UserAgent != apiUserAgent {
			t.Errorf("session.ended user agent %q, expected the API caller's %q", event.UserAgent, apiUserAgent)
		}
	})
}

func TestEndAllExceptCurrent(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "erin")
	browsers := []*testsupport.Browser{
		env.newBrowser(t, chromeOnWindows), env.newBrowser(t, firefoxOnLinux), env.newBrowser(t, chromeOnWindows),
	}
	var sids []string
	var keptToken string
	for i, b := range browsers {
		token := env.app.SignIn(t, b, "erin", password, personScopes)
		sids = append(sids, sessionID(t, token))
		if i == 0 {
			keptToken = token.AccessToken
		}
	}

	invalid := env.sessionAPI(t, keptToken, http.MethodDelete, "/v1/sessions?except=foo").Problem(t, http.StatusBadRequest)
	if len(invalid.Errors) != 1 || invalid.Errors[0].Field != "except" {
		t.Errorf("except=foo: problem errors %+v, expected one naming the field except", invalid.Errors)
	}
	if ids := sessionIDs(env.listSessions(t, keptToken, "/v1/sessions")); len(ids) != 3 {
		t.Fatalf("after the rejected request the user has sessions %v, expected all 3", ids)
	}

	env.sessionAPI(t, keptToken, http.MethodDelete, "/v1/sessions?except=current").ExpectStatus(t, http.StatusNoContent)

	listed := env.listSessions(t, keptToken, "/v1/sessions")
	if ids := sessionIDs(listed); !slices.Equal(ids, []string{sids[0]}) {
		t.Fatalf("after except=current the user has sessions %v, expected only the current %s", ids, sids[0])
	}
	if !listed[sids[0]].Current {
		t.Errorf("the kept session is not marked current")
	}
	if params := env.silentAuthorization(t, browsers[0], env.issuer); params.Get("code") == "" {
		t.Errorf("prompt=none in the kept browser: callback %v, expected a code", params)
	}
	for i, b := range browsers[1:] {
		if params := env.silentAuthorization(t, b, env.issuer); params.Get("error") != "login_required" {
			t.Errorf("prompt=none in ended browser %d: callback %v, expected error=login_required", i+1, params)
		}
	}

	env.waitForLogouts(t)
	var notified []string
	for _, raw := range env.receiver.received() {
		sid, _ := env.verifyLogoutToken(t, raw).claims["sid"].(string)
		notified = append(notified, sid)
	}
	slices.Sort(notified)
	if want := sortedStrings(sids[1], sids[2]); !slices.Equal(notified, want) {
		t.Errorf("logout tokens for sids %v, expected one each for the ended %v", notified, want)
	}
	var ended []string
	for _, event := range env.sessionEndedEvents(t, user.ID) {
		if event.Details["reason"] != "user_request" {
			t.Errorf("session.ended reason %v, expected user_request", event.Details["reason"])
		}
		sid, _ := event.Details["sid"].(string)
		ended = append(ended, sid)
	}
	slices.Sort(ended)
	if want := sortedStrings(sids[1], sids[2]); !slices.Equal(ended, want) {
		t.Errorf("session.ended events for sids %v, expected %v", ended, want)
	}

	// Without except, the current session ends too and its token stops
	// working.
	env.sessionAPI(t, keptToken, http.MethodDelete, "/v1/sessions").ExpectStatus(t, http.StatusNoContent)
	env.sessionAPI(t, keptToken, http.MethodGet, "/v1/sessions").ExpectInvalidToken(t)
	if params := env.silentAuthorization(t, browsers[0], env.issuer); params.Get("error") != "login_required" {
		t.Errorf("prompt=none after ending every session: callback %v, expected error=login_required", params)
	}
}

func TestSessionsOfOthersStayHidden(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, xPassword := env.createUser(t, "xavier")
	userY, yPassword := env.createUser(t, "yvonne")
	browserX := env.newBrowser(t, chromeOnWindows)
	tokenX := env.app.SignIn(t, browserX, "xavier", xPassword, personScopes)
	browserY := env.newBrowser(t, firefoxOnLinux)
	tokenY := env.app.SignIn(t, browserY, "yvonne", yPassword, personScopes)
	sidX, sidY := sessionID(t, tokenX), sessionID(t, tokenY)

	if ids := sessionIDs(env.listSessions(t, tokenX.AccessToken, "/v1/sessions")); !slices.Equal(ids, []string{sidX}) {
		t.Errorf("X's GET /v1/sessions lists %v, expected only X's %s", ids, sidX)
	}

	// A session of someone else is reported exactly like an unknown one,
	// so that session ids cannot be probed.
	foreign := env.sessionAPI(t, tokenX.AccessToken, http.MethodDelete, "/v1/sessions/"+sidY).Problem(t, http.StatusNotFound)
	unknown := env.sessionAPI(t, tokenX.AccessToken, http.MethodDelete, "/v1/sessions/no-such-session").Problem(t, http.StatusNotFound)
	if foreign.Detail != unknown.Detail || foreign.Title != unknown.Title {
		t.Errorf("Y's session is reported as %q/%q and an unknown one as %q/%q, expected the same",
			foreign.Title, foreign.Detail, unknown.Title, unknown.Detail)
	}

	// Ending all of X's sessions leaves Y's alone too.
	env.sessionAPI(t, tokenX.AccessToken, http.MethodDelete, "/v1/sessions").ExpectStatus(t, http.StatusNoContent)

	if params := env.silentAuthorization(t, browserY, env.issuer); params.Get("code") == "" {
		t.Errorf("prompt=none in Y's browser: callback %v, expected a code", params)
	}
	if ids := sessionIDs(env.listSessions(t, tokenY.AccessToken, "/v1/sessions")); !slices.Equal(ids, []string{sidY}) {
		t.Errorf("Y's GET /v1/sessions lists %v, expected Y's %s", ids, sidY)
	}
	if events := env.sessionEndedEvents(t, userY.ID); len(events) != 0 {
		t.Errorf("%d session.ended events for Y, expected none", len(events))
	}
	if params := env.silentAuthorization(t, browserX, env.issuer); params.Get("error") != "login_required" {
		t.Errorf("prompt=none in X's browser after ending X's sessions: callback %v, expected error=login_required", params)
	}
}

// adminRoute is one route that needs scope admin and sessions:admin.
type adminRoute struct {
	method, path string
}

func (r adminRoute) String() string { return r.method + " " + r.path }

func TestAdminEndsAnotherUsersSession(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, adminPassword := env.createUser(t, "ada")
	env.assignRole(t, admin, storage.RoleAdmin)
	adminBrowser := env.newBrowser(t, chromeOnWindows)
	adminToken := env.app.SignIn(t, adminBrowser, "ada", adminPassword, adminScopes)
	// The same browser signs in again without the admin scope and without
	// a password, in the same login session.
	adminPersonToken := env.app.SignIn(t, adminBrowser, "ada", adminPassword, personScopes)
	adminSID := sessionID(t, adminToken)

	target, targetPassword := env.createUser(t, "tom")
	targetBrowser1 := env.newBrowser(t, firefoxOnLinux)
	// tom requests the admin scope but holds no role with sessions:admin.
	targetToken1 := env.app.SignIn(t, targetBrowser1, "tom", targetPassword, adminScopes)
	targetBrowser2 := env.newBrowser(t, chromeOnWindows)
	targetToken2 := env.app.SignIn(t, targetBrowser2, "tom", targetPassword, personScopes)
	targetSID1, targetSID2 := sessionID(t, targetToken1), sessionID(t, targetToken2)

	adminPath := "/v1/users/" + admin.ID + "/sessions"
	routes := []adminRoute{
		{http.MethodGet, "/v1/sessions/stats"},
		{http.MethodGet, adminPath},
		{http.MethodDelete, adminPath + "/" + adminSID},
		{http.MethodDelete, adminPath},
	}

	t.Run("permission required", func(t *testing.T) {
		for _, route := range routes {
			response := env.sessionAPI(t, targetToken1.AccessToken, route.method, route.path)
			rejected := response.Problem(t, http.StatusForbidden)
			if !strings.Contains(rejected.Detail, storage.PermissionSessionsAdmin) {
				t.Errorf("%s without the permission: detail %q does not name %s", route, rejected.Detail, storage.PermissionSessionsAdmin)
			}
			if challenge := response.Header.Get("WWW-Authenticate"); challenge != "" {
				t.Errorf("%s without the permission: WWW-Authenticate %q, expected none because the token is valid", route, challenge)
			}
		}
	})

	t.Run("admin scope required", func(t *testing.T) {
		for _, route := range routes {
			response := env.sessionAPI(t, adminPersonToken.AccessToken, route.method, route.path)
			response.Problem(t, http.StatusForbidden)
			challenge := response.Header.Get("WWW-Authenticate")
			if !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="admin"`) {
				t.Errorf("%s without scope admin: WWW-Authenticate %q, expected insufficient_scope for scope admin", route, challenge)
			}
		}
	})

	t.Run("client credentials rejected", func(t *testing.T) {
		token := env.app.ClientCredentialsToken(t, "admin")
		for _, route := range routes {
			env.sessionAPI(t, token, route.method, route.path).Problem(t, http.StatusForbidden)
		}
		// The person routes need no scope, but they reject a token that
		// was issued to no person.
		own := env.sessionAPI(t, token, http.MethodGet, "/v1/sessions").Problem(t, http.StatusForbidden)
		if !strings.Contains(own.Detail, "person") {
			t.Errorf("GET /v1/sessions with a client credentials token: detail %q, expected it to name a person", own.Detail)
		}
	})

	// None of the rejected requests ended a session.
	if ids := sessionIDs(env.listSessions(t, adminToken.AccessToken, adminPath)); !slices.Equal(ids, []string{adminSID}) {
		t.Fatalf("after the rejected requests the admin has sessions %v, expected %s", ids, adminSID)
	}

	targetPath := "/v1/users/" + target.ID + "/sessions"
	listed := env.listSessions(t, adminToken.AccessToken, targetPath)
	if ids := sessionIDs(listed); !slices.Equal(ids, sortedStrings(targetSID1, targetSID2)) {
		t.Fatalf("admin's GET %s lists %v, expected tom's %s and %s", targetPath, ids, targetSID1, targetSID2)
	}
	for id, session := range listed {
		if session.Current {
			t.Errorf("tom's session %s is marked current in the admin's listing", id)
		}
		if session.UserID != target.ID {
			t.Errorf("session %s in tom's listing has user_id %s", id, session.UserID)
		}
	}

	// A session id under another user's path, or an unknown one, is not
	// found.
	env.sessionAPI(t, adminToken.AccessToken, http.MethodDelete, targetPath+"/"+adminSID).Problem(t, http.StatusNotFound)
	env.sessionAPI(t, adminToken.AccessToken, http.MethodDelete, targetPath+"/no-such-session").Problem(t, http.StatusNotFound)

	env.sessionAPI(t, adminToken.AccessToken, http.MethodDelete, targetPath+"/"+targetSID2).ExpectStatus(t, http.StatusNoContent)

	if ids := sessionIDs(env.listSessions(t, adminToken.AccessToken, targetPath)); !slices.Equal(ids, []string{targetSID1}) {
		t.Errorf("after ending one, tom has sessions %v, expected %s", ids, targetSID1)
	}
	if params := env.silentAuthorization(t, targetBrowser2, env.issuer); params.Get("error") != "login_required" {
		t.Errorf("prompt=none in tom's ended browser: callback %v, expected error=login_required", params)
	}
	env.sessionAPI(t, targetToken2.AccessToken, http.MethodGet, "/v1/sessions").ExpectInvalidToken(t)
	events := env.sessionEndedEvents(t, target.ID)
	if len(events) != 1 {
		t.Fatalf("%d session.ended events for tom, expected 1", len(events))
	}
	if events[0].ActorID != admin.ID || events[0].Details["reason"] != "admin_request" || events[0].Details["sid"] != targetSID2 {
		t.Errorf("session.ended by the admin: actor %s, reason %v, sid %v; expected actor %s, reason admin_request, sid %s",
			events[0].ActorID, events[0].Details["reason"], events[0].Details["sid"], admin.ID, targetSID2)
	}
	env.waitForLogouts(t)
	received := env.receiver.received()
	if len(received) != 1 {
		t.Fatalf("back-channel receiver got %d logout tokens, expected 1", len(received))
	}
	env.checkLogoutToken(t, env.verifyLogoutToken(t, received[0]), env.app.ID, target.ID, targetSID2)

	env.sessionAPI(t, adminToken.AccessToken, http.MethodDelete, targetPath).ExpectStatus(t, http.StatusNoContent)

	if ids := sessionIDs(env.listSessions(t, adminToken.AccessToken, targetPath)); len(ids) != 0 {
		t.Errorf("after ending all, tom has sessions %v, expected none", ids)
	}
	if params := env.silentAuthorization(t, targetBrowser1, env.issuer); params.Get("error") != "login_required" {
		t.Errorf("prompt=none in tom's other browser: callback %v, expected error=login_required", params)
	}
	events = env.sessionEndedEvents(t, target.ID)
	if len(events) != 2 {
		t.Fatalf("%d session.ended events for tom after ending all, expected 2", len(events))
	}
	if events[0].ActorID != admin.ID || events[0].Details["reason"] != "admin_request" || events[0].Details["sid"] != targetSID1 {
		t.Errorf("session.ended by ending all: actor %s, reason %v, sid %v; expected actor %s, reason admin_request, sid %s",
			events[0].ActorID, events[0].Details["reason"], events[0].Details["sid"], admin.ID, targetSID1)
	}
	if params := env.silentAuthorization(t, adminBrowser, env.issuer); params.Get("code") == "" {
		t.Errorf("prompt=none in the admin's browser: callback %v, expected a code", params)
	}
}

func TestStatsCountLoginsAndLogouts(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	firstLogin := time.Now()

	admin, adminPassword := env.createUser(t, "ada")
	env.assignRole(t, admin, storage.RoleAdmin)
	adminToken := env.app.SignIn(t, env.newBrowser(t, chromeOnWindows), "ada", adminPassword, adminScopes)

	// uma keeps two sessions: one with both clients, one with other alone.
	// Her third session and vic's only one end below.
	_, umaPassword := env.createUser(t, "uma")
	umaBoth := env.newBrowser(t, chromeOnWindows)
	env.app.SignIn(t, umaBoth, "uma", umaPassword, personScopes)
	env.other.SignIn(t, umaBoth, "uma", umaPassword, personScopes)
	env.other.SignIn(t, env.newBrowser(t, firefoxOnLinux), "uma", umaPassword, personScopes)
	umaLeaving := env.newBrowser(t, firefoxOnLinux)
	umaLeavingToken := env.app.SignIn(t, umaLeaving, "uma", umaPassword, personScopes)
	_, vicPassword := env.createUser(t, "vic")
	vicToken := env.app.SignIn(t, env.newBrowser(t, chromeOnWindows), "vic", vicPassword, personScopes)
	const logins = 5

	before := env.readStats(t, adminToken.AccessToken, firstLogin, logins)
	checkCount(t, "active_sessions before the logouts", before.ActiveSessions, 5)
	checkCount(t, "active_users.now before the logouts", before.ActiveUsers.Now, 3)
	checkCount(t, "active_users.last_24h before the logouts", before.ActiveUsers.Last24h, 3)
	checkCount(t, "active_users.last_30d before the logouts", before.ActiveUsers.Last30d, 3)
	checkClients(t, "before the logouts", before.SessionsPerClient, map[string]int64{env.app.ID: 4, env.other.ID: 2})
	checkCount(t, "mfa_sessions before the logouts", before.MFASessions, 0)
	if before.MFAShare != 0 {
		t.Errorf("mfa_share before the logouts %v, expected 0", before.MFAShare)
	}

	// vic ends his session through the session API, and uma's leaving
	// browser signs out at the provider with its ID token as the hint.
	env.sessionAPI(t, vicToken.AccessToken, http.MethodDelete, "/v1/sessions/"+sessionID(t, vicToken)).ExpectStatus(t, http.StatusNoContent)
	idToken, _ := umaLeavingToken.Extra("id_token").(string)
	signedOut := umaLeaving.Get(env.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {idToken}}.Encode())
	if signedOut.Status != http.StatusOK {
		t.Fatalf("RP-initiated logout with a hint for the current session: status %d, expected 200: %.300s", signedOut.Status, signedOut.Body)
	}

	after := env.readStats(t, adminToken.AccessToken, firstLogin, logins)
	checkCount(t, "active_sessions after the logouts", after.ActiveSessions, 3)
	checkCount(t, "active_users.now after the logouts", after.ActiveUsers.Now, 2)
	checkCount(t, "active_users.last_24h after the logouts", after.ActiveUsers.Last24h, 3)
	checkCount(t, "active_users.last_30d after the logouts", after.ActiveUsers.Last30d, 3)
	checkClients(t, "after the logouts", after.SessionsPerClient, map[string]int64{env.app.ID: 2, env.other.ID: 2})
	checkCount(t, "mfa_sessions after the logouts", after.MFASessions, 0)
	if after.MFAShare != 0 {
		t.Errorf("mfa_share after the logouts %v, expected 0", after.MFAShare)
	}
}

// readStats reads GET /v1/sessions/stats and checks logins_per_hour: 48
// consecutive clock hours ending with the current one, adding up to logins,
// all of them in the current hour unless an hour began since firstLogin.
func (e *testEnv) readStats(t *testing.T, accessToken string, firstLogin time.Time, logins int64) statsBody {
	t.Helper()
	response := e.sessionAPI(t, accessToken, http.MethodGet, "/v1/sessions/stats")
	response.ExpectStatus(t, http.StatusOK)
	read := time.Now()
	var stats statsBody
	response.Decode(t, &stats)

	hours := stats.LoginsPerHour
	if len(hours) != 48 {
		t.Fatalf("logins_per_hour has %d entries, expected 48", len(hours))
	}
	var total int64
	for i, hour := range hours {
		total += hour.Logins
		if i > 0 && !hour.Hour.Equal(hours[i-1].Hour.Add(time.Hour)) {
			t.Errorf("logins_per_hour entry %d is for %v, expected the hour after %v", i, hour.Hour, hours[i-1].Hour)
		}
	}
	if total != logins {
		t.Errorf("logins_per_hour adds up to %d, expected %d logins", total, logins)
	}

	current := hours[len(hours)-1]
	firstHour := firstLogin.UTC().Truncate(time.Hour)
	readHour := read.UTC().Truncate(time.Hour)
	if !current.Hour.Equal(firstHour) && !current.Hour.Equal(readHour) {
		t.Errorf("last logins_per_hour entry is for %v, expected the current hour, %v or %v", current.Hour, firstHour, readHour)
	}
	if firstHour.Equal(readHour) && current.Logins != logins {
		t.Errorf("current hour %v has %d logins, expected all %d", current.Hour, current.Logins, logins)
	}
	return stats
}

func checkCount(t *testing.T, name string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s %d, expected %d", name, got, want)
	}
}

func checkClients(t *testing.T, when string, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("sessions_per_client %s %v, expected %v", when, got, want)
		return
	}
	for clientID, count := range want {
		if got[clientID] != count {
			t.Errorf("sessions_per_client %s: client %s has %d, expected %d", when, clientID, got[clientID], count)
		}
	}
}

func TestRPLogoutNotifiesBackchannelClient(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "rita")
	b := env.newBrowser(t, firefoxOnLinux)
	// The session gets both clients, and only app registered a
	// back-channel logout URI.
	env.other.SignIn(t, b, "rita", password, personScopes)
	token := env.app.SignIn(t, b, "rita", password, personScopes)
	sid := sessionID(t, token)
	idToken, _ := token.Extra("id_token").(string)
	if claimed := testsupport.JWTPayload(t, idToken)["sid"]; claimed != sid {
		t.Fatalf("ID token sid %v, expected the access token's %s", claimed, sid)
	}

	signedOut := b.Get(env.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {idToken}}.Encode())
	if signedOut.Status != http.StatusOK {
		t.Fatalf("RP-initiated logout with a hint for the current session: status %d, expected 200: %.300s", signedOut.Status, signedOut.Body)
	}

	env.waitForLogouts(t)
	received := env.receiver.received()
	if len(received) != 1 {
		t.Fatalf("back-channel receiver got %d logout tokens, expected 1 for app", len(received))
	}
	env.checkLogoutToken(t, env.verifyLogoutToken(t, received[0]), env.app.ID, user.ID, sid)
	env.sessionAPI(t, token.AccessToken, http.MethodGet, "/v1/sessions").ExpectInvalidToken(t)
}
