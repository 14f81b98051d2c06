package userapi_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage"
)

func TestProfileEditShowsInUserinfo(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "paula")
	b := env.newBrowser(t)
	token := env.signIn(t, b, "paula", password, "openid", "account", "profile", "email", "phone")

	profile := map[string]string{
		"name":               "Paula Ortiz",
		"given_name":         "Paula",
		"family_name":        "Ortiz",
		"preferred_username": "pao",
		"picture":            "https://images.example.com/paula.png",
		"locale":             "es-MX",
		"zoneinfo":           "America/Mexico_City",
		"phone_number":       "+525512345678",
	}
	patched := env.call(t, token.AccessToken, http.MethodPatch, "/v1/me", profile)
	patched.ExpectStatus(t, http.StatusOK)
	var fromPatch map[string]any
	patched.Decode(t, &fromPatch)

	var fromGet map[string]any
	got := env.call(t, token.AccessToken, http.MethodGet, "/v1/me", nil)
	got.ExpectStatus(t, http.StatusOK)
	got.Decode(t, &fromGet)

	claims := env.userinfo(t, token.AccessToken)
	for field, want := range profile {
		if fromPatch[field] != want {
			t.Errorf("PATCH /v1/me response %s = %v, expected %q", field, fromPatch[field], want)
		}
		if fromGet[field] != want {
			t.Errorf("GET /v1/me %s = %v, expected %q", field, fromGet[field], want)
		}
		if claims[field] != want {
			t.Errorf("userinfo %s = %v, expected %q", field, claims[field], want)
		}
	}
	if claims["sub"] != user.ID {
		t.Errorf("userinfo sub = %v, expected %s", claims["sub"], user.ID)
	}
	if claims["phone_number_verified"] != false {
		t.Errorf("userinfo phone_number_verified = %v, expected false for a new number", claims["phone_number_verified"])
	}
	if claims["email"] != "paula@example.com" {
		t.Errorf("userinfo email = %v, expected the unchanged paula@example.com", claims["email"])
	}
	if claims["email_verified"] != true {
		t.Errorf("userinfo email_verified = %v, expected true while the email is unchanged", claims["email_verified"])
	}

	// A new sign-in releases the edited profile in the ID token too.
	again := env.signIn(t, b, "paula", password, "openid", "account", "profile", "phone")
	rawIDToken, _ := again.Extra("id_token").(string)
	idClaims := testsupport.JWTPayload(t, rawIDToken)
	for field, want := range profile {
		if idClaims[field] != want {
			t.Errorf("ID token %s = %v, expected %q", field, idClaims[field], want)
		}
	}
}

func TestEmailChangeMarksItUnverified(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, password := env.createUser(t, "emil")
	token := env.signIn(t, env.newBrowser(t), "emil", password, "openid", "account", "profile", "email")

	unchanged := env.call(t, token.AccessToken, http.MethodPatch, "/v1/me", map[string]string{"email": "emil@example.com"})
	unchanged.ExpectStatus(t, http.StatusOK)
	var same userBody
	unchanged.Decode(t, &same)
	if !same.EmailVerified {
		t.Errorf("email_verified = false after setting the same address, expected true")
	}

	changed := env.call(t, token.AccessToken, http.MethodPatch, "/v1/me", map[string]string{"email": "emil@example.org"})
	changed.ExpectStatus(t, http.StatusOK)
	var updated userBody
	changed.Decode(t, &updated)
	if updated.Email != "emil@example.org" {
		t.Errorf("PATCH response email = %q, expected emil@example.org", updated.Email)
	}
	if updated.EmailVerified {
		t.Errorf("PATCH response email_verified = true after a new address, expected false")
	}

	claims := env.userinfo(t, token.AccessToken)
	if claims["email"] != "emil@example.org" {
		t.Errorf("userinfo email = %v, expected emil@example.org", claims["email"])
	}
	if claims["email_verified"] != false {
		t.Errorf("userinfo email_verified = %v, expected false", claims["email_verified"])
	}
}

func TestRoleGrantAppliesOnNextRequest(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")

	// Each case takes the auditor's audit:read permission away another way.
	revocations := []struct {
		name   string
		revoke func(t *testing.T, roleName string, user *storage.User)
	}{
		{"role removed from user", func(t *testing.T, roleName string, user *storage.User) {
			env.call(t, adminToken.AccessToken, http.MethodDelete, "/v1/users/"+user.ID+"/roles/"+roleName, nil).
				ExpectStatus(t, http.StatusNoContent)
		}},
		{"permission removed from role", func(t *testing.T, roleName string, _ *storage.User) {
			env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/roles/"+roleName, map[string]any{"permissions": []string{}}).
				ExpectStatus(t, http.StatusOK)
		}},
		{"role deleted", func(t *testing.T, roleName string, _ *storage.User) {
			env.call(t, adminToken.AccessToken, http.MethodDelete, "/v1/roles/"+roleName, nil).
				ExpectStatus(t, http.StatusNoContent)
		}},
	}
	for i, revocation := range revocations {
		t.Run(revocation.name, func(t *testing.T) {
			username := fmt.Sprintf("auditor%d", i)
			roleName := fmt.Sprintf("auditors-%d", i)
			user, password := env.createUser(t, username)
			token := env.signIn(t, env.newBrowser(t), username, password, adminScopes...)

			env.call(t, token.AccessToken, http.MethodGet, "/v1/audit-events", nil).Problem(t, http.StatusForbidden)

			created := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/roles", map[string]any{
				"name": roleName, "description": "Reads the audit log", "permissions": []string{"audit:read"},
			})
			created.ExpectStatus(t, http.StatusCreated)
			var role struct {
				ID          string   `json:"id"`
				Name        string   `json:"name"`
				Permissions []string `json:"permissions"`
			}
			created.Decode(t, &role)
			if role.Name != roleName {
				t.Errorf("created role name = %q, expected %q", role.Name, roleName)
			}
			if !slices.Equal(role.Permissions, []string{"audit:read"}) {
				t.Errorf("created role permissions = %v, expected [audit:read]", role.Permissions)
			}

			env.call(t, adminToken.AccessToken, http.MethodPut, "/v1/users/"+user.ID+"/roles/"+roleName, nil).
				ExpectStatus(t, http.StatusNoContent)

			mine := env.call(t, token.AccessToken, http.MethodGet, "/v1/me/permissions", nil)
			mine.ExpectStatus(t, http.StatusOK)
			var permissions struct {
				Roles       []string `json:"roles"`
				Permissions []string `json:"permissions"`
			}
			mine.Decode(t, &permissions)
			if !slices.Equal(permissions.Roles, []string{roleName}) {
				t.Errorf("GET /v1/me/permissions roles = %v, expected [%s]", permissions.Roles, roleName)
			}
			if !slices.Equal(permissions.Permissions, []string{"audit:read"}) {
				t.Errorf("GET /v1/me/permissions permissions = %v, expected [audit:read]", permissions.Permissions)
			}

			allowed := env.call(t, token.AccessToken, http.MethodGet, "/v1/audit-events", nil)
			allowed.ExpectStatus(t, http.StatusOK)
			var events auditPage
			allowed.Decode(t, &events)
			if len(events.Items) == 0 {
				t.Errorf("GET /v1/audit-events returned no events, expected at least the login and role changes")
			}

			revocation.revoke(t, roleName, user)
			rejected := env.call(t, token.AccessToken, http.MethodGet, "/v1/audit-events", nil).Problem(t, http.StatusForbidden)
			if !strings.Contains(rejected.Detail, "audit:read") {
				t.Errorf("403 detail %q does not name the missing permission audit:read", rejected.Detail)
			}
		})
	}
}

func TestRoleChangeErrorsAreProblems(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user := env.createListedUser(t, "nora", "Nora")
	env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/roles", map[string]any{"name": "editors"}).
		ExpectStatus(t, http.StatusCreated)

	cases := []struct {
		name   string
		method string
		path   string
		body   any
		want   int
	}{
		{"create with taken name", http.MethodPost, "/v1/roles", map[string]any{"name": "user"}, http.StatusConflict},
		{"rename to taken name", http.MethodPatch, "/v1/roles/editors", map[string]any{"name": "admin"}, http.StatusConflict},
		{"remove role not held", http.MethodDelete, "/v1/users/" + user.ID + "/roles/user", nil, http.StatusNotFound},
		{"assign unknown role", http.MethodPut, "/v1/users/" + user.ID + "/roles/no-such-role", nil, http.StatusNotFound},
		{"user id not a UUID", http.MethodGet, "/v1/users/nora", nil, http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.call(t, adminToken.AccessToken, tc.method, tc.path, tc.body).Problem(t, tc.want)
		})
	}
}

func TestRoleNamedLikeUUIDIsAddressable(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user := env.createListedUser(t, "nora", "Nora")

	// 32 lower-case hex digits fit the role name pattern, and uuid.Parse
	// also reads them as a UUID without dashes.
	name := strings.ReplaceAll(uuid.NewString(), "-", "")
	created := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/roles", map[string]any{"name": name})
	// Rejecting such a name is as good a fix as finding the role by it.
	if created.Status == http.StatusBadRequest {
		if fields := created.Problem(t, http.StatusBadRequest).Fields(); !slices.Equal(fields, []string{"name"}) {
			t.Errorf("POST /v1/roles with a UUID-shaped name: problem fields %v, expected [name]", fields)
		}
		return
	}
	created.ExpectStatus(t, http.StatusCreated)

	got := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/roles/"+name, nil)
	if got.Status != http.StatusOK {
		t.Errorf("GET /v1/roles/%s of a role just created with that name: status %d, expected 200", name, got.Status)
	}
	assigned := env.call(t, adminToken.AccessToken, http.MethodPut, "/v1/users/"+user.ID+"/roles/"+name, nil)
	if assigned.Status != http.StatusNoContent {
		t.Errorf("PUT /v1/users/{id}/roles/%s: status %d, expected 204", name, assigned.Status)
	}
}

// adminRoute is one admin route of the user API, with the permission the
// route table in doc.go states for it.
type adminRoute struct {
	method     string
	path       string
	permission string
	body       any
	// statusWithPermission is the status a caller with the permission gets.
	// The target ids do not exist and the bodies are empty, so no request
	// changes anything.
	statusWithPermission int
}

func (r adminRoute) String() string { return r.method + " " + r.path }

// adminRoutes returns every admin route aimed at a user and a role that do
// not exist.
func adminRoutes() []adminRoute {
	userPath := "/v1/users/" + uuid.NewString()
	rolePath := "/v1/roles/" + uuid.NewString()
	return []adminRoute{
		{http.MethodGet, "/v1/users", storage.PermissionUsersRead, nil, http.StatusOK},
		{http.MethodPost, "/v1/users", storage.PermissionUsersWrite, map[string]any{}, http.StatusBadRequest},
		{http.MethodGet, userPath, storage.PermissionUsersRead, nil, http.StatusNotFound},
		{http.MethodPatch, userPath, storage.PermissionUsersWrite, map[string]any{}, http.StatusNotFound},
		{http.MethodPost, userPath + "/disable", storage.PermissionUsersWrite, nil, http.StatusNotFound},
		{http.MethodPost, userPath + "/enable", storage.PermissionUsersWrite, nil, http.StatusNotFound},
		{http.MethodDelete, userPath, storage.PermissionUsersWrite, nil, http.StatusNotFound},
		{http.MethodGet, userPath + "/roles", storage.PermissionUsersRead, nil, http.StatusNotFound},
		{http.MethodPut, userPath + "/roles/user", storage.PermissionRolesWrite, nil, http.StatusNotFound},
		{http.MethodDelete, userPath + "/roles/user", storage.PermissionRolesWrite, nil, http.StatusNotFound},
		{http.MethodGet, "/v1/roles", storage.PermissionUsersRead, nil, http.StatusOK},
		{http.MethodPost, "/v1/roles", storage.PermissionRolesWrite, map[string]any{}, http.StatusBadRequest},
		{http.MethodGet, rolePath, storage.PermissionUsersRead, nil, http.StatusNotFound},
		{http.MethodPatch, rolePath, storage.PermissionRolesWrite, map[string]any{}, http.StatusNotFound},
		{http.MethodDelete, "/v1/roles/no-such-role", storage.PermissionRolesWrite, nil, http.StatusNotFound},
		{http.MethodGet, "/v1/audit-events", storage.PermissionAuditRead, nil, http.StatusOK},
	}
}

func TestAdminRoutesCheckTheirPermission(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	routes := adminRoutes()

	// A person without a role has no permission, so every admin route
	// rejects the request.
	_, password := env.createUser(t, "plain")
	plainToken := env.signIn(t, env.newBrowser(t), "plain", password, adminScopes...)
	for _, route := range routes {
		response := env.call(t, plainToken.AccessToken, route.method, route.path, route.body)
		rejected := response.Problem(t, http.StatusForbidden)
		if !strings.Contains(rejected.Detail, route.permission) {
			t.Errorf("%s: 403 detail %q does not name the permission %s", route, rejected.Detail, route.permission)
		}
		if challenge := response.Header.Get("WWW-Authenticate"); challenge != "" {
			t.Errorf("%s: WWW-Authenticate %q on a permission failure, expected none because the token is valid", route, challenge)
		}
	}

	// A person with exactly one permission passes the routes that need it
	// and no others.
	for _, permission := range []string{
		storage.PermissionUsersRead, storage.PermissionUsersWrite, storage.PermissionRolesWrite, storage.PermissionAuditRead,
	} {
		t.Run(permission, func(t *testing.T) {
			roleName := "only-" + strings.ReplaceAll(permission, ":", "-")
			role := &storage.Role{Name: roleName, Permissions: []string{permission}}
			if err := env.store.CreateRole(context.Background(), role); err != nil {
				t.Fatalf("create role %s: %v", roleName, err)
			}
			username := "holder-" + strings.ReplaceAll(permission, ":", "-")
			user, password := env.createUser(t, username)
			env.assignRole(t, user, roleName)
			token := env.signIn(t, env.newBrowser(t), username, password, adminScopes...)

			for _, route := range routes {
				response := env.call(t, token.AccessToken, route.method, route.path, route.body)
				want := http.StatusForbidden
				if route.permission == permission {
					want = route.statusWithPermission
				}
				if response.Status != want {
					t.Errorf("%s with only %s: status %d, expected %d: %.300s", route, permission, response.Status, want, response.Body)
				}
			}
		})
	}
}

func TestAdminRoutesRequireAdminScope(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, password := env.createUser(t, "ada")
	env.assignRole(t, admin, storage.RoleAdmin)
	token := env.signIn(t, env.newBrowser(t), "ada", password, personScopes...)

	for _, route := range adminRoutes() {
		response := env.call(t, token.AccessToken, route.method, route.path, route.body)
		response.Problem(t, http.StatusForbidden)
		challenge := response.Header.Get("WWW-Authenticate")
		if !strings.Contains(challenge, `error="insufficient_scope"`) {
			t.Errorf("%s: WWW-Authenticate %q, expected error=\"insufficient_scope\"", route, challenge)
		}
		if !strings.Contains(challenge, `scope="admin"`) {
			t.Errorf("%s: WWW-Authenticate %q, expected scope=\"admin\"", route, challenge)
		}
	}

	// The same token reaches the person's own account.
	env.call(t, token.AccessToken, http.MethodGet, "/v1/me", nil).ExpectStatus(t, http.StatusOK)
}

func TestClientCredentialsTokenIsRejected(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	// The provider grants a client acting for itself no person scope, and
	// account and admin are person scopes: the token carries neither.
	token := env.client.ClientCredentialsToken(t, "profile account admin")
	claims := testsupport.JWTPayload(t, token)
	if claims["sub"] != env.client.ID {
		t.Fatalf("client credentials token sub = %v, expected the client id %s", claims["sub"], env.client.ID)
	}
	if scope, _ := claims["scope"].(string); scope != "" {
		t.Errorf("client credentials token scope = %q, expected none of the person scopes requested", scope)
	}

	for _, path := range []string{"/v1/me", "/v1/users"} {
		response := env.call(t, token, http.MethodGet, path, nil)
		response.Problem(t, http.StatusForbidden)
		if challenge := response.Header.Get("WWW-Authenticate"); !strings.Contains(challenge, "insufficient_scope") {
			t.Errorf("GET %s challenge %q, expected insufficient_scope", path, challenge)
		}
	}
}

func TestRequestWithoutTokenIsUnauthorized(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	for _, path := range []string{"/v1/me", "/v1/users"} {
		response := env.call(t, "", http.MethodGet, path, nil)
		response.Problem(t, http.StatusUnauthorized)
		if challenge := response.Header.Get("WWW-Authenticate"); !strings.HasPrefix(challenge, "Bearer ") {
			t.Errorf("GET %s without a token: WWW-Authenticate %q, expected a Bearer challenge", path, challenge)
		}
	}
	unsigned := env.call(t, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", http.MethodGet, "/v1/me", nil)
	unsigned.Problem(t, http.StatusUnauthorized)
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, oldPassword := env.createUser(t, "petra")
	changer := env.newBrowser(t)
	changerToken := env.signIn(t, changer, "petra", oldPassword, personScopes...)
	other := env.newBrowser(t)
	otherToken := env.signIn(t, other, "petra", oldPassword, personScopes...)
	newPassword := "correct horse battery staple"

	wrong := env.call(t, changerToken.AccessToken, http.MethodPost, "/v1/me/password",
		map[string]string{"current_password": "not the password", "new_password": newPassword})
	if fields := wrong.Problem(t, http.StatusBadRequest).Fields(); !slices.Equal(fields, []string{"current_password"}) {
		t.Errorf("wrong current password: problem fields %v, expected [current_password]", fields)
	}
	short := env.call(t, changerToken.AccessToken, http.MethodPost, "/v1/me/password",
		map[string]string{"current_password": oldPassword, "new_password": "short"})
	if fields := short.Problem(t, http.StatusBadRequest).Fields(); !slices.Equal(fields, []string{"new_password"}) {
		t.Errorf("7-character new password: problem fields %v, expected [new_password]", fields)
	}

	changed := env.call(t, changerToken.AccessToken, http.MethodPost, "/v1/me/password",
		map[string]string{"current_password": oldPassword, "new_password": newPassword})
	changed.ExpectStatus(t, http.StatusNoContent)

	recorded, err := env.store.ListAuditEvents(context.Background(), storage.AuditFilter{
		Subject: user.ID, Action: "user.password_changed", Limit: 10,
	})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	var outcomes []string
	for _, event := range recorded {
		outcomes = append(outcomes, event.Outcome)
	}
	if !slices.Equal(outcomes, []string{storage.OutcomeSuccess, storage.OutcomeFailure}) {
		t.Errorf("user.password_changed outcomes newest first = %v, expected [success failure]", outcomes)
	}

	t.Run("old password no longer logs in", func(t *testing.T) {
		b := env.newBrowser(t)
		authURL, _, _ := env.client.AuthorizationURL(personScopes)
		result := b.Login(env.issuer, b.Get(authURL), "petra", oldPassword)
		if result.Status != http.StatusBadRequest {
			t.Errorf("login with the old password: status %d, expected 400", result.Status)
		}
		if result.Location != "" {
			t.Errorf("login with the old password redirected to %q, expected the login page again", result.Location)
		}
		if !strings.Contains(result.Body, "Invalid username or password.") {
			t.Errorf("login page after the old password shows no error: %.400s", result.Body)
		}
	})
	t.Run("new password logs in", func(t *testing.T) {
		env.signIn(t, env.newBrowser(t), "petra", newPassword, personScopes...)
	})
	t.Run("other session ended", func(t *testing.T) {
		params := env.silentAuthorization(t, other)
		if params.Get("error") != "login_required" {
			t.Errorf("prompt=none in the other browser: callback %v, expected error=login_required", params)
		}
		status, body := env.client.Refresh(t, otherToken.RefreshToken)
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("refresh token of the other session: status %d %v, expected 400 invalid_grant", status, body)
		}
	})
	t.Run("changing session keeps working", func(t *testing.T) {
		params := env.silentAuthorization(t, changer)
		if params.Get("code") == "" {
			t.Errorf("prompt=none in the browser that changed the password: callback %v, expected a code", params)
		}
		status, body := env.client.Refresh(t, changerToken.RefreshToken)
		if status != http.StatusOK {
			t.Errorf("refresh token of the changing session: status %d %v, expected 200", status, body)
		}
		env.call(t, changerToken.AccessToken, http.MethodGet, "/v1/me", nil).ExpectStatus(t, http.StatusOK)
	})
}

func TestDisabledUserCannotLogIn(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "dora")
	userBrowser := env.newBrowser(t)
	userToken := env.signIn(t, userBrowser, "dora", password, personScopes...)

	disabled := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users/"+user.ID+"/disable", nil)
	disabled.ExpectStatus(t, http.StatusOK)
	var body userBody
	disabled.Decode(t, &body)
	if !body.Disabled {
		t.Errorf("disable response disabled = false, expected true")
	}

	loginPage := func(t *testing.T) *testsupport.Page {
		b := env.newBrowser(t)
		authURL, _, _ := env.client.AuthorizationURL(personScopes)
		return b.Login(env.issuer, b.Get(authURL), "dora", password)
	}
	rejected := loginPage(t)
	if rejected.Status != http.StatusBadRequest {
		t.Errorf("login of a disabled user: status %d, expected 400", rejected.Status)
	}
	if rejected.Location != "" {
		t.Errorf("login of a disabled user redirected to %q, expected no redirect", rejected.Location)
	}
	if !strings.Contains(rejected.Body, "This account is disabled") {
		t.Errorf("login page of a disabled user shows no disabled error: %.400s", rejected.Body)
	}

	status, refreshBody := env.client.Refresh(t, userToken.RefreshToken)
	if status != http.StatusBadRequest || refreshBody["error"] != "invalid_grant" {
		t.Errorf("refresh token of a disabled user: status %d %v, expected 400 invalid_grant", status, refreshBody)
	}
	if params := env.silentAuthorization(t, userBrowser); params.Get("error") != "login_required" {
		t.Errorf("prompt=none of a disabled user: callback %v, expected error=login_required", params)
	}
	// Disabling ended the user's login sessions, so their access token is
	// rejected before the account is even looked at.
	me := env.call(t, userToken.AccessToken, http.MethodGet, "/v1/me", nil).Problem(t, http.StatusUnauthorized)
	if !strings.Contains(me.Detail, "session") {
		t.Errorf("GET /v1/me of a disabled user: detail %q, expected it to say the login session has ended", me.Detail)
	}

	self := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users/"+admin.ID+"/disable", nil)
	self.Problem(t, http.StatusBadRequest)

	enabled := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users/"+user.ID+"/enable", nil)
	enabled.ExpectStatus(t, http.StatusOK)
	enabled.Decode(t, &body)
	if body.Disabled {
		t.Errorf("enable response disabled = true, expected false")
	}
	params := testsupport.CallbackParams(t, loginPage(t))
	if params.Get("code") == "" {
		t.Errorf("login after enable: callback %v, expected a code", params)
	}
}

func TestDeletedUserLosesAccess(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "dean")
	userToken := env.signIn(t, env.newBrowser(t), "dean", password, personScopes...)

	env.call(t, adminToken.AccessToken, http.MethodDelete, "/v1/users/"+admin.ID, nil).Problem(t, http.StatusBadRequest)
	env.call(t, adminToken.AccessToken, http.MethodDelete, "/v1/users/"+user.ID, nil).ExpectStatus(t, http.StatusNoContent)

	env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/users/"+user.ID, nil).Problem(t, http.StatusNotFound)
	env.call(t, userToken.AccessToken, http.MethodGet, "/v1/me", nil).Problem(t, http.StatusUnauthorized)
	status, body := env.client.Refresh(t, userToken.RefreshToken)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh token of a deleted user: status %d %v, expected 400 invalid_grant", status, body)
	}
}

func TestAdminCreatesUserWhoLogsIn(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")

	password := "a long enough password"
	created := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users", map[string]any{
		"username": "Nina", "email": "nina@example.com", "email_verified": true, "name": "Nina Simone",
		"password": password, "roles": []string{"user"},
	})
	created.ExpectStatus(t, http.StatusCreated)
	var user userBody
	created.Decode(t, &user)
	if user.Username != "nina" {
		t.Errorf("created username = %q, expected the lower-case nina", user.Username)
	}
	if !user.EmailVerified {
		t.Errorf("created email_verified = false, expected true as requested")
	}

	roles := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/users/"+user.ID+"/roles", nil)
	roles.ExpectStatus(t, http.StatusOK)
	var rolePage struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	roles.Decode(t, &rolePage)
	if len(rolePage.Items) != 1 || rolePage.Items[0].Name != "user" {
		t.Errorf("roles of the created user = %+v, expected only user", rolePage.Items)
	}

	duplicate := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users", map[string]any{
		"username": "nina", "email": "other@example.com", "password": password,
	})
	duplicate.Problem(t, http.StatusConflict)

	token := env.signIn(t, env.newBrowser(t), "nina", password, personScopes...)
	env.call(t, token.AccessToken, http.MethodGet, "/v1/me", nil).ExpectStatus(t, http.StatusOK)
}

func TestBadInputNamesEachField(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")

	cases := []struct {
		name       string
		method     string
		path       string
		body       any
		wantFields []string
	}{
		{"unknown field", http.MethodPatch, "/v1/me", map[string]any{"favorite_color": "x"}, []string{"favorite_color"}},
		{"invalid profile fields", http.MethodPatch, "/v1/me", map[string]any{
			"locale": "not a locale!", "zoneinfo": "Mars/Olympus_Mons", "phone_number": "555-0100",
			"picture": "javascript:alert(1)",
		}, []string{"locale", "phone_number", "picture", "zoneinfo"}},
		{"zoneinfo with path", http.MethodPatch, "/v1/me", map[string]any{"zoneinfo": "../../etc/passwd"}, []string{"zoneinfo"}},
		{"zoneinfo Local", http.MethodPatch, "/v1/me", map[string]any{"zoneinfo": "Local"}, []string{"zoneinfo"}},
		{"picture with credentials", http.MethodPatch, "/v1/me", map[string]any{"picture": "https://user:pass@example.com/a.png"}, []string{"picture"}},
		{"invalid email", http.MethodPatch, "/v1/me", map[string]any{"email": "not an address"}, []string{"email"}},
		{"name too long", http.MethodPatch, "/v1/me", map[string]any{"name": strings.Repeat("n", 201)}, []string{"name"}},
		{"wrong type", http.MethodPatch, "/v1/me", map[string]any{"name": 5}, []string{"name"}},
		{"admin-only fields on own account", http.MethodPatch, "/v1/me", map[string]any{
			"username": "other", "email_verified": true, "phone_number_verified": true,
		}, []string{"email_verified", "phone_number_verified", "username"}},
		{"body not JSON", http.MethodPatch, "/v1/me", "{", nil},
		{"two JSON values", http.MethodPatch, "/v1/me", `{"name":"a"} {"name":"b"}`, nil},
		{"short new password", http.MethodPost, "/v1/me/password", map[string]any{"current_password": "x", "new_password": "short"}, []string{"new_password"}},
		{"user without required fields", http.MethodPost, "/v1/users", map[string]any{}, []string{"email", "password", "username"}},
		{"user with unknown role", http.MethodPost, "/v1/users", map[string]any{
			"username": "x", "email": "x@example.com", "password": "long enough password", "roles": []string{"no-such-role"},
		}, []string{"roles"}},
		{"invalid role name", http.MethodPost, "/v1/roles", map[string]any{"name": "Bad Name!"}, []string{"name"}},
		{"invalid permission", http.MethodPost, "/v1/roles", map[string]any{"name": "ok", "permissions": []string{"Not OK"}}, []string{"permissions"}},
		{"limit zero", http.MethodGet, "/v1/users?limit=0", nil, []string{"limit"}},
		{"limit above maximum", http.MethodGet, "/v1/users?limit=201", nil, []string{"limit"}},
		{"limit not a number", http.MethodGet, "/v1/users?limit=ten", nil, []string{"limit"}},
		{"negative audit limit", http.MethodGet, "/v1/audit-events?limit=-1", nil, []string{"limit"}},
		{"since not RFC 3339", http.MethodGet, "/v1/audit-events?since=yesterday", nil, []string{"since"}},
		{"until not RFC 3339", http.MethodGet, "/v1/audit-events?until=2026-13-01", nil, []string{"until"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			response := env.call(t, adminToken.AccessToken, tc.method, tc.path, tc.body)
			fields := response.Problem(t, http.StatusBadRequest).Fields()
			if tc.wantFields != nil && !slices.Equal(fields, tc.wantFields) {
				t.Errorf("problem fields %v, expected %v", fields, tc.wantFields)
			}
		})
	}

	// None of the rejected requests changed the account.
	me := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/me", nil)
	me.ExpectStatus(t, http.StatusOK)
	var user userBody
	me.Decode(t, &user)
	if user.Name != "Test ada" {
		t.Errorf("name = %q after rejected requests, expected the unchanged Test ada", user.Name)
	}
	if user.Locale != "" {
		t.Errorf("locale = %q after rejected requests, expected it unset", user.Locale)
	}
}

func TestNonObjectBodyNamesNoField(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")

	for _, body := range []string{"[]", `"text"`, "42"} {
		t.Run(body, func(t *testing.T) {
			response := env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/me", body)
			document := response.Problem(t, http.StatusBadRequest)
			for _, fieldError := range document.Errors {
				if fieldError.Field == "" {
					t.Errorf("problem reports an error with an empty field name (%q), expected a problem saying the body is not a JSON object", fieldError.Detail)
				}
			}
			if strings.Contains(string(response.Body), "userapi.") {
				t.Errorf("problem exposes an internal Go type name: %s", response.Body)
			}
		})
	}
}

func TestOversizedBodyIsRejected(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")

	response := env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/me", map[string]string{"name": strings.Repeat("n", 70_000)})
	response.Problem(t, http.StatusRequestEntityTooLarge)
}

func TestUnknownRouteReturnsProblem(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")

	env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/nothing-here", nil).Problem(t, http.StatusNotFound)
	env.call(t, adminToken.AccessToken, http.MethodPut, "/v1/me", nil).Problem(t, http.StatusMethodNotAllowed)
}

func TestTamperedCursorIsRejected(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	for _, username := range []string{"tom", "tim", "tia"} {
		env.createListedUser(t, username, "Tester "+username)
	}

	var users userPage
	first := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/users?limit=1", nil)
	first.ExpectStatus(t, http.StatusOK)
	first.Decode(t, &users)
	if users.NextCursor == "" {
		t.Fatalf("GET /v1/users?limit=1 of 4 users has no next_cursor")
	}
	// A second audit event after the admin's login, so that a page of one
	// has a next_cursor.
	env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/me", map[string]string{"name": "Ada"}).
		ExpectStatus(t, http.StatusOK)
	var events auditPage
	audit := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/audit-events?limit=1", nil)
	audit.ExpectStatus(t, http.StatusOK)
	audit.Decode(t, &events)
	if events.NextCursor == "" {
		t.Fatalf("GET /v1/audit-events?limit=1 has no next_cursor")
	}

	payload, signature, _ := strings.Cut(users.NextCursor, ".")
	decoded, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatalf("users cursor payload is not base64url: %v", err)
	}
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(decoded), `"p":"`, `"p":"a`, 1)))
	flippedSignature := []byte(signature)
	flippedSignature[0] ^= 1

	cases := []struct {
		name string
		path string
	}{
		{"payload changed", "/v1/users?limit=1&cursor=" + url.QueryEscape(forgedPayload+"."+signature)},
		{"signature changed", "/v1/users?limit=1&cursor=" + url.QueryEscape(payload+"."+string(flippedSignature))},
		{"signature missing", "/v1/users?limit=1&cursor=" + url.QueryEscape(payload)},
		{"not base64", "/v1/users?limit=1&cursor=" + url.QueryEscape("!!!.???")},
		{"empty parts", "/v1/users?limit=1&cursor=."},
		{"other query", "/v1/users?limit=1&q=t&cursor=" + url.QueryEscape(users.NextCursor)},
		{"audit cursor for users", "/v1/users?limit=1&cursor=" + url.QueryEscape(events.NextCursor)},
		{"users cursor for audit", "/v1/audit-events?limit=1&cursor=" + url.QueryEscape(users.NextCursor)},
		{"garbage for audit", "/v1/audit-events?cursor=garbage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			response := env.call(t, adminToken.AccessToken, http.MethodGet, tc.path, nil)
			if fields := response.Problem(t, http.StatusBadRequest).Fields(); !slices.Equal(fields, []string{"cursor"}) {
				t.Errorf("problem fields %v, expected [cursor]", fields)
			}
		})
	}

	env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/users?limit=1&cursor="+url.QueryEscape(users.NextCursor), nil).
		ExpectStatus(t, http.StatusOK)
}

func TestListUsersSearchesAndPaginates(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	var want []string
	for i := range 6 {
		username := fmt.Sprintf("pager-%02d", i)
		env.createListedUser(t, username, "Paged user")
		want = append(want, username)
	}
	// Matches by name, case-insensitively, not by username or email.
	env.createListedUser(t, "zed", "A PAGER fan")
	want = append(want, "zed")
	env.createListedUser(t, "other-1", "Someone else")
	env.createListedUser(t, "other-2", "Someone else")

	var listed []string
	cursor := ""
	for pageNumber := 1; ; pageNumber++ {
		if pageNumber > 10 {
			t.Fatalf("pagination did not end after 10 pages: listed %v", listed)
		}
		path := "/v1/users?q=Pager&limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		response := env.call(t, adminToken.AccessToken, http.MethodGet, path, nil)
		response.ExpectStatus(t, http.StatusOK)
		var users userPage
		response.Decode(t, &users)
		if len(users.Items) > 2 {
			t.Errorf("page %d has %d users, expected at most the limit 2", pageNumber, len(users.Items))
		}
		if users.NextCursor != "" && len(users.Items) != 2 {
			t.Errorf("page %d has %d users and a next_cursor, expected a full page of 2", pageNumber, len(users.Items))
		}
		for _, user := range users.Items {
			listed = append(listed, user.Username)
		}
		if users.NextCursor == "" {
			break
		}
		cursor = users.NextCursor
	}
	if !slices.Equal(listed, want) {
		t.Errorf("users listed for q=Pager across pages = %v, expected %v in username order", listed, want)
	}

	// LIKE wildcards in q match themselves only.
	for _, search := range []string{"%", "_"} {
		response := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/users?q="+url.QueryEscape(search), nil)
		response.ExpectStatus(t, http.StatusOK)
		var users userPage
		response.Decode(t, &users)
		if len(users.Items) != 0 {
			t.Errorf("q=%s listed %d users, expected none because no username, email or name contains it", search, len(users.Items))
		}
	}

	everyone := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/users", nil)
	everyone.ExpectStatus(t, http.StatusOK)
	var all userPage
	everyone.Decode(t, &all)
	if len(all.Items) != 10 {
		t.Errorf("GET /v1/users listed %d users, expected all 10", len(all.Items))
	}
	if all.NextCursor != "" {
		t.Errorf("GET /v1/users of 10 users with the default limit has next_cursor %q, expected none", all.NextCursor)
	}
}

func TestAuditEventsRecordChanges(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "uma")

	wrongLogin := env.newBrowser(t)
	authURL, _, _ := env.client.AuthorizationURL(personScopes)
	wrongLogin.Login(env.issuer, wrongLogin.Get(authURL), "uma", "wrong-password-value")
	token := env.signIn(t, env.newBrowser(t), "uma", password, personScopes...)

	patched := env.call(t, token.AccessToken, http.MethodPatch, "/v1/me", map[string]string{"name": "Uma Thurman"})
	patched.ExpectStatus(t, http.StatusOK)
	env.call(t, token.AccessToken, http.MethodPost, "/v1/me/password",
		map[string]string{"current_password": "wrong-current-value", "new_password": "long enough password"}).
		ExpectStatus(t, http.StatusBadRequest)
	created := env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/roles",
		map[string]any{"name": "auditors", "permissions": []string{"audit:read"}})
	created.ExpectStatus(t, http.StatusCreated)
	var role struct {
		ID string `json:"id"`
	}
	created.Decode(t, &role)
	env.call(t, adminToken.AccessToken, http.MethodPut, "/v1/users/"+user.ID+"/roles/auditors", nil).
		ExpectStatus(t, http.StatusNoContent)

	all := listAuditEvents(t, env, adminToken.AccessToken, "limit=200")
	expected := []struct {
		action, actor, subject, outcome string
	}{
		{"login", admin.ID, admin.ID, storage.OutcomeSuccess},
		{"login", "", user.ID, storage.OutcomeFailure},
		{"login", user.ID, user.ID, storage.OutcomeSuccess},
		{"user.profile_updated", user.ID, user.ID, storage.OutcomeSuccess},
		{"user.password_changed", user.ID, user.ID, storage.OutcomeFailure},
		{"role.created", admin.ID, role.ID, storage.OutcomeSuccess},
		{"role.assigned", admin.ID, user.ID, storage.OutcomeSuccess},
	}
	found := map[string]auditEvent{}
	for _, want := range expected {
		index := slices.IndexFunc(all, func(event auditEvent) bool {
			return event.Action == want.action && event.ActorID == want.actor && event.Subject == want.subject && event.Outcome == want.outcome
		})
		if index < 0 {
			t.Errorf("no audit event %s by %q on %q with outcome %s in %s", want.action, want.actor, want.subject, want.outcome, describeEvents(all))
			continue
		}
		found[want.action+"/"+want.outcome+"/"+want.actor] = all[index]
		if all[index].ActorType != storage.ActorUser {
			t.Errorf("%s actor_type = %q, expected user", want.action, all[index].ActorType)
		}
		if all[index].IPAddress != "127.0.0.1" {
			t.Errorf("%s ip_address = %q, expected 127.0.0.1", want.action, all[index].IPAddress)
		}
	}

	t.Run("details hold no secret", func(t *testing.T) {
		failedLogin := found["login/failure/"]
		if failedLogin.Details["reason"] != "bad_credentials" {
			t.Errorf("failed login details = %v, expected reason bad_credentials", failedLogin.Details)
		}
		profile := found["user.profile_updated/success/"+user.ID]
		if fields, _ := profile.Details["fields"].([]any); len(fields) != 1 || fields[0] != "name" {
			t.Errorf("profile update details = %v, expected fields [name]", profile.Details)
		}
		assigned := found["role.assigned/success/"+admin.ID]
		if assigned.Details["role"] != "auditors" {
			t.Errorf("role assignment details = %v, expected role auditors", assigned.Details)
		}
		raw := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/audit-events?limit=200", nil)
		for _, secret := range []string{password, "wrong-password-value", "wrong-current-value", "long enough password"} {
			if strings.Contains(string(raw.Body), secret) {
				t.Errorf("audit events contain the password %q", secret)
			}
		}
	})

	t.Run("request details recorded", func(t *testing.T) {
		profile := found["user.profile_updated/success/"+user.ID]
		if want := patched.Header.Get("X-Request-Id"); want == "" || profile.RequestID != want {
			t.Errorf("profile update request_id = %q, expected the response's X-Request-Id %q", profile.RequestID, want)
		}
		if profile.UserAgent != userAgent {
			t.Errorf("profile update user_agent = %q, expected %q", profile.UserAgent, userAgent)
		}
	})

	t.Run("newest first", func(t *testing.T) {
		for i := 1; i < len(all); i++ {
			if all[i].OccurredAt.After(all[i-1].OccurredAt) {
				t.Errorf("event %d (%s at %s) is newer than event %d (%s at %s), expected newest first",
					i, all[i].Action, all[i].OccurredAt, i-1, all[i-1].Action, all[i-1].OccurredAt)
			}
		}
		assigned := slices.IndexFunc(all, func(event auditEvent) bool { return event.Action == "role.assigned" })
		roleCreated := slices.IndexFunc(all, func(event auditEvent) bool { return event.Action == "role.created" })
		if assigned > roleCreated {
			t.Errorf("role.assigned at index %d comes after role.created at %d, expected the later event first", assigned, roleCreated)
		}
	})

	filters := []struct {
		name  string
		query string
		match func(auditEvent) bool
	}{
		{"by action", "action=role.assigned", func(e auditEvent) bool { return e.Action == "role.assigned" }},
		{"by actor", "actor=" + admin.ID, func(e auditEvent) bool { return e.ActorID == admin.ID }},
		{"by subject", "subject=" + user.ID, func(e auditEvent) bool { return e.Subject == user.ID }},
		{"by outcome", "outcome=failure", func(e auditEvent) bool { return e.Outcome == storage.OutcomeFailure }},
		{"by action and actor", "action=login&actor=" + user.ID, func(e auditEvent) bool {
			return e.Action == "login" && e.ActorID == user.ID
		}},
	}
	for _, filter := range filters {
		t.Run(filter.name, func(t *testing.T) {
			var want []string
			for _, event := range all {
				if filter.match(event) {
					want = append(want, event.ID)
				}
			}
			if len(want) == 0 {
				t.Fatalf("no event matches %s in %s", filter.query, describeEvents(all))
			}
			got := eventIDs(listAuditEvents(t, env, adminToken.AccessToken, filter.query+"&limit=200"))
			if !slices.Equal(got, want) {
				t.Errorf("events for %s = %v, expected %v", filter.query, got, want)
			}
		})
	}

	t.Run("time range", func(t *testing.T) {
		newest := all[0].OccurredAt
		oldest := all[len(all)-1].OccurredAt
		before := url.QueryEscape(oldest.Add(-time.Hour).Format(time.RFC3339))
		after := url.QueryEscape(newest.Add(time.Hour).Format(time.RFC3339))
		if events := listAuditEvents(t, env, adminToken.AccessToken, "until="+before); len(events) != 0 {
			t.Errorf("until an hour before the first event listed %d events, expected none", len(events))
		}
		if events := listAuditEvents(t, env, adminToken.AccessToken, "since="+after); len(events) != 0 {
			t.Errorf("since an hour after the last event listed %d events, expected none", len(events))
		}
		within := listAuditEvents(t, env, adminToken.AccessToken, "limit=200&since="+before+"&until="+after)
		if !slices.Equal(eventIDs(within), eventIDs(all)) {
			t.Errorf("a range around every event listed %d events, expected all %d", len(within), len(all))
		}

		// since includes an event at exactly its time, and until excludes it.
		boundary := all[len(all)/2].OccurredAt
		var wantSince, wantUntil []string
		for _, event := range all {
			if event.OccurredAt.Before(boundary) {
				wantUntil = append(wantUntil, event.ID)
			} else {
				wantSince = append(wantSince, event.ID)
			}
		}
		exact := url.QueryEscape(boundary.Format(time.RFC3339Nano))
		if got := eventIDs(listAuditEvents(t, env, adminToken.AccessToken, "limit=200&since="+exact)); !slices.Equal(got, wantSince) {
			t.Errorf("since=%s listed %v, expected %v", boundary.Format(time.RFC3339Nano), got, wantSince)
		}
		if got := eventIDs(listAuditEvents(t, env, adminToken.AccessToken, "limit=200&until="+exact)); !slices.Equal(got, wantUntil) {
			t.Errorf("until=%s listed %v, expected %v", boundary.Format(time.RFC3339Nano), got, wantUntil)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		var paged []string
		cursor := ""
		for pageNumber := 1; ; pageNumber++ {
			if pageNumber > len(all)+1 {
				t.Fatalf("pagination did not end after %d pages", pageNumber-1)
			}
			query := "/v1/audit-events?limit=2"
			if cursor != "" {
				query += "&cursor=" + url.QueryEscape(cursor)
			}
			response := env.call(t, adminToken.AccessToken, http.MethodGet, query, nil)
			response.ExpectStatus(t, http.StatusOK)
			var events auditPage
			response.Decode(t, &events)
			if len(events.Items) > 2 {
				t.Errorf("page %d has %d events, expected at most the limit 2", pageNumber, len(events.Items))
			}
			paged = append(paged, eventIDs(events.Items)...)
			if events.NextCursor == "" {
				break
			}
			cursor = events.NextCursor
		}
		if !slices.Equal(paged, eventIDs(all)) {
			t.Errorf("events across pages of 2 = %v, expected the single listing %v", paged, eventIDs(all))
		}
	})
}

// listAuditEvents returns one page of GET /v1/audit-events?query.
func listAuditEvents(t *testing.T, env *testEnv, accessToken, query string) []auditEvent {
	t.Helper()
	response := env.call(t, accessToken, http.MethodGet, "/v1/audit-events?"+query, nil)
	response.ExpectStatus(t, http.StatusOK)
	var events auditPage
	response.Decode(t, &events)
	return events.Items
}

func eventIDs(events []auditEvent) []string {
	ids := make([]string, 0, len(events))
	for _, event := range events {
		ids = append(ids, event.ID)
	}
	return ids
}

// describeEvents lists events as action(actor→subject, outcome) for
// failure messages.
func describeEvents(events []auditEvent) string {
	parts := make([]string, 0, len(events))
	for _, event := range events {
		parts = append(parts, fmt.Sprintf("%s(%s→%s, %s)", event.Action, event.ActorID, event.Subject, event.Outcome))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestRolesScopeAddsRolesClaim(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "rita")
	if err := env.store.CreateRole(context.Background(), &storage.Role{Name: "editors", Permissions: []string{"articles:write"}}); err != nil {
		t.Fatalf("create role editors: %v", err)
	}
	env.assignRole(t, user, "editors")
	env.assignRole(t, user, storage.RoleUser)
	want := []string{"editors", "user"}

	token := env.signIn(t, env.newBrowser(t), "rita", password, "openid", "account", "profile", "roles")
	rawIDToken, _ := token.Extra("id_token").(string)
	tokens := map[string]map[string]any{
		"ID token":     testsupport.JWTPayload(t, rawIDToken),
		"access token": testsupport.JWTPayload(t, token.AccessToken),
		"userinfo":     env.userinfo(t, token.AccessToken),
	}
	for name, claims := range tokens {
		if got := stringList(claims["roles"]); !slices.Equal(got, want) {
			t.Errorf("%s roles claim = %v, expected %v", name, claims["roles"], want)
		}
	}

	without := env.signIn(t, env.newBrowser(t), "rita", password, "openid", "account", "profile")
	rawIDToken, _ = without.Extra("id_token").(string)
	tokens = map[string]map[string]any{
		"ID token":     testsupport.JWTPayload(t, rawIDToken),
		"access token": testsupport.JWTPayload(t, without.AccessToken),
		"userinfo":     env.userinfo(t, without.AccessToken),
	}
	for name, claims := range tokens {
		if roles, ok := claims["roles"]; ok {
			t.Errorf("%s without the roles scope has roles claim %v, expected none", name, roles)
		}
	}
}

func TestRolesClaimEmptyForUserWithoutRoles(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, password := env.createUser(t, "nadia")

	token := env.signIn(t, env.newBrowser(t), "nadia", password, "openid", "roles")
	rawIDToken, _ := token.Extra("id_token").(string)
	tokens := map[string]map[string]any{
		"ID token":     testsupport.JWTPayload(t, rawIDToken),
		"access token": testsupport.JWTPayload(t, token.AccessToken),
	}
	for name, claims := range tokens {
		roles, ok := claims["roles"]
		if !ok {
			t.Errorf("%s of a user with no role has no roles claim, expected an empty list because the roles scope was granted", name)
			continue
		}
		if list, isList := roles.([]any); !isList || len(list) != 0 {
			t.Errorf("%s roles claim = %v, expected an empty list", name, roles)
		}
	}
}

func TestRefreshKeepsRolesClaim(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "rita")
	env.assignRole(t, user, storage.RoleUser)

	token := env.signIn(t, env.newBrowser(t), "rita", password, "openid", "roles", "offline_access")
	status, body := env.client.Refresh(t, token.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: status %d %v, expected 200", status, body)
	}
	for _, name := range []string{"access_token", "id_token"} {
		raw, _ := body[name].(string)
		if got := stringList(testsupport.JWTPayload(t, raw)["roles"]); !slices.Equal(got, []string{"user"}) {
			t.Errorf("refreshed %s roles claim = %v, expected [user]", name, got)
		}
	}
}

// stringList converts a decoded JSON array of strings, or returns nil.
func stringList(value any) []string {
	items, ok := value.([]any)
	if !ok {
		return nil
	}
	list := make([]string, 0, len(items))
	for _, item := range items {
		text, _ := item.(string)
		list = append(list, text)
	}
	return list
}

func TestAuditChainIntactAfterConcurrentChanges(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	var users []*storage.User
	for i := range 8 {
		users = append(users, env.createListedUser(t, fmt.Sprintf("member-%d", i), "Member"))
	}

	var wg sync.WaitGroup
	statuses := make([]string, 2*len(users))
	status := func(response *testsupport.APIResponse, err error) string {
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%d %.200s", response.Status, response.Body)
	}
	for i, user := range users {
		wg.Go(func() {
			statuses[2*i] = status(env.send(adminToken.AccessToken, http.MethodPost, "/v1/roles",
				map[string]any{"name": fmt.Sprintf("team-%d", i), "permissions": []string{"users:read"}}))
		})
		wg.Go(func() {
			statuses[2*i+1] = status(env.send(adminToken.AccessToken, http.MethodPatch, "/v1/users/"+user.ID,
				map[string]any{"name": fmt.Sprintf("Member %d", i)}))
		})
	}
	wg.Wait()
	for i := range users {
		if !strings.HasPrefix(statuses[2*i], "201 ") {
			t.Errorf("concurrent POST /v1/roles %d: %s, expected status 201", i, statuses[2*i])
		}
		if !strings.HasPrefix(statuses[2*i+1], "200 ") {
			t.Errorf("concurrent PATCH /v1/users %d: %s, expected status 200", i, statuses[2*i+1])
		}
	}

	result, err := env.store.VerifyAuditChain(context.Background())
	if err != nil {
		t.Fatalf("verify audit chain: %v", err)
	}
	if result.BrokenSeq != 0 {
		t.Errorf("audit chain broken at seq %d: %s", result.BrokenSeq, result.Reason)
	}
	events := listAuditEvents(t, env, adminToken.AccessToken, "limit=200")
	if result.Checked != int64(len(events)) {
		t.Errorf("VerifyAuditChain checked %d rows, expected all %d events", result.Checked, len(events))
	}
	for _, action := range []string{"role.created", "user.updated"} {
		count := 0
		for _, event := range events {
			if event.Action == action {
				count++
			}
		}
		if count != len(users) {
			t.Errorf("%d %s events, expected %d", count, action, len(users))
		}
	}
}

func TestDisableSurvivesConcurrentProfileEdit(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "rex")
	token := env.signIn(t, env.newBrowser(t), "rex", password, personScopes...)

	for round := 1; round <= 10; round++ {
		var disabled *testsupport.APIResponse
		editProfileDuring(t, env, token.AccessToken, func() {
			disabled = env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users/"+user.ID+"/disable", nil)
		})
		disabled.ExpectStatus(t, http.StatusOK)

		stored, err := env.store.GetUser(context.Background(), user.ID)
		if err != nil {
			t.Fatalf("get user: %v", err)
		}
		if !stored.Disabled {
			t.Fatalf("round %d: user is enabled again after POST /disable returned 200 and the user's own PATCH /v1/me requests finished, expected disabled", round)
		}
		env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/users/"+user.ID+"/enable", nil).ExpectStatus(t, http.StatusOK)
	}
}

func TestAdminEditSurvivesConcurrentProfileEdit(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "ada")
	user, password := env.createUser(t, "rex")
	token := env.signIn(t, env.newBrowser(t), "rex", password, personScopes...)

	// Each round flips email_verified, a field only an administrator may
	// change, while the user edits other fields of the same profile.
	for round := 1; round <= 10; round++ {
		verified := round%2 == 0
		var patched *testsupport.APIResponse
		editProfileDuring(t, env, token.AccessToken, func() {
			patched = env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/users/"+user.ID,
				map[string]any{"email_verified": verified})
		})
		patched.ExpectStatus(t, http.StatusOK)

		stored, err := env.store.GetUser(context.Background(), user.ID)
		if err != nil {
			t.Fatalf("get user: %v", err)
		}
		if stored.EmailVerified != verified {
			t.Fatalf("round %d: email_verified = %t, expected %t as the administrator's PATCH set it while the user's own PATCH /v1/me requests ran",
				round, stored.EmailVerified, verified)
		}
	}
}

// editProfileDuring runs change while the user of accessToken keeps
// several PATCH /v1/me requests in flight. A lost update needs an edit
// that reads the user before change commits and writes after it.
func editProfileDuring(t *testing.T, env *testEnv, accessToken string, change func()) {
	t.Helper()
	const editors = 12
	var stop atomic.Bool
	var edits atomic.Int64
	var wg sync.WaitGroup
	for range editors {
		wg.Go(func() {
			for !stop.Load() {
				response, err := env.send(accessToken, http.MethodPatch, "/v1/me", map[string]string{"name": "Rex"})
				if err != nil || response.Status == http.StatusForbidden {
					return
				}
				edits.Add(1)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); edits.Load() < editors && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}

	change()
	// Edits that read the user before the change finish meanwhile.
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
}
