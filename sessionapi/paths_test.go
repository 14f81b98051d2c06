package sessionapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

func TestAdminPathsTakeCanonicalIDsOnly(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	admin, adminPassword := env.createUser(t, "olga")
	env.assignRole(t, admin, storage.RoleAdmin)
	adminToken := env.app.SignIn(t, env.newBrowser(t, chromeOnWindows), "olga", adminPassword, adminScopes)
	user, password := env.createUser(t, "pete")
	userToken := env.app.SignIn(t, env.newBrowser(t, firefoxOnLinux), "pete", password, personScopes)

	// PostgreSQL reads these spellings as the same UUID, but the session
	// store does not, so ending the sessions of one would end nothing.
	for _, id := range []string{strings.ToUpper(user.ID), "{" + user.ID + "}", strings.ReplaceAll(user.ID, "-", "")} {
		env.sessionAPI(t, adminToken.AccessToken, http.MethodDelete, "/v1/users/"+id+"/sessions").Problem(t, http.StatusNotFound)
		env.sessionAPI(t, adminToken.AccessToken, http.MethodGet, "/v1/users/"+id+"/sessions").Problem(t, http.StatusNotFound)
	}
	// A session id that is no base64url hash names no session, nor any
	// other key in the session store.
	for _, sid := range []string{sessionID(t, userToken) + ":clients", "short", strings.Repeat("a", 44)} {
		env.sessionAPI(t, userToken.AccessToken, http.MethodDelete, "/v1/sessions/"+sid).Problem(t, http.StatusNotFound)
	}

	if sessions := env.listSessions(t, userToken.AccessToken, "/v1/sessions"); len(sessions) != 1 {
		t.Errorf("pete has %d sessions after the refused requests, want 1", len(sessions))
	}
}

func TestSessionAdminCannotActOnGreaterUsers(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := context.Background()
	// A role with sessions:admin alone.
	role := &storage.Role{Name: "session-operator", Description: "Ends sessions", Permissions: []string{storage.PermissionSessionsAdmin}}
	if err := env.store.CreateRole(ctx, role); err != nil {
		t.Fatalf("create role: %v", err)
	}
	operator, operatorPassword := env.createUser(t, "quinn")
	env.assignRole(t, operator, "session-operator")
	operatorToken := env.app.SignIn(t, env.newBrowser(t, chromeOnWindows), "quinn", operatorPassword, adminScopes)
	admin, adminPassword := env.createUser(t, "rosa")
	env.assignRole(t, admin, storage.RoleAdmin)
	adminToken := env.app.SignIn(t, env.newBrowser(t, firefoxOnLinux), "rosa", adminPassword, personScopes)

	env.sessionAPI(t, operatorToken.AccessToken, http.MethodGet, "/v1/users/"+admin.ID+"/sessions").Problem(t, http.StatusForbidden)
	env.sessionAPI(t, operatorToken.AccessToken, http.MethodDelete, "/v1/users/"+admin.ID+"/sessions").Problem(t, http.StatusForbidden)
	if sessions := env.listSessions(t, adminToken.AccessToken, "/v1/sessions"); len(sessions) != 1 {
		t.Errorf("the administrator has %d sessions after the refused requests, want 1", len(sessions))
	}
}
