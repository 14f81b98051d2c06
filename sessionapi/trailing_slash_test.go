package sessionapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

func TestEmptySessionIDEndsNothing(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	user, password := env.createUser(t, "nora")
	env.assignRole(t, user, storage.RoleAdmin)
	token := env.app.SignIn(t, env.newBrowser(t, chromeOnWindows), "nora", password, adminScopes)
	other := env.app.SignIn(t, env.newBrowser(t, firefoxOnLinux), "nora", password, personScopes)
	sids := sortedStrings(sessionID(t, token), sessionID(t, other))

	// A client that builds the path from an empty id sends these. Go's
	// client, like browsers and curl -L, follows a 307 with the same method
	// and, on the same host, the same Authorization header.
	for _, path := range []string{"/v1/sessions/", "/v1/sessions/?except=current", "/v1/users/" + user.ID + "/sessions/"} {
		env.sessionAPI(t, token.AccessToken, http.MethodDelete, path).Problem(t, http.StatusNotFound)
	}

	if ids := sessionIDs(env.listSessions(t, token.AccessToken, "/v1/sessions")); !slices.Equal(ids, sids) {
		t.Errorf("after DELETE with an empty session id the user has sessions %v, expected both %v", ids, sids)
	}
}
