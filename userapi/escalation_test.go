package userapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

// TestNoPermissionGrantsAnother checks that administrators can hand out,
// and act on holders of, only the permissions they hold themselves.
func TestNoPermissionGrantsAnother(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	_, adminToken := env.createAdmin(t, "root")

	env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/roles", map[string]any{
		"name": "helpdesk", "permissions": []string{storage.PermissionUsersRead, storage.PermissionUsersWrite, storage.PermissionRolesWrite},
	}).expectStatus(t, http.StatusCreated)
	helper, password := env.createUser(t, "helen")
	env.assignRole(t, helper, "helpdesk")
	token := env.signIn(t, env.newBrowser(t), "helen", password, adminScopes...)

	env.call(t, token.AccessToken, http.MethodPost, "/v1/users", map[string]any{
		"username": "mallet", "email": "mallet@example.com", "password": "a long password", "roles": []string{"admin"},
	}).problem(t, http.StatusBadRequest)

	victim, _ := env.createUser(t, "victor")
	env.call(t, token.AccessToken, http.MethodPut, "/v1/users/"+victim.ID+"/roles/admin", nil).problem(t, http.StatusForbidden)
	env.call(t, token.AccessToken, http.MethodPost, "/v1/roles", map[string]any{
		"name": "sneaky", "permissions": []string{storage.PermissionAuditRead},
	}).problem(t, http.StatusBadRequest)

	admin, err := env.store.GetUserByUsername(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	env.call(t, token.AccessToken, http.MethodPatch, "/v1/users/"+admin.ID, map[string]any{"email": "helen@example.com"}).
		problem(t, http.StatusForbidden)
	env.call(t, token.AccessToken, http.MethodPost, "/v1/users/"+admin.ID+"/disable", nil).problem(t, http.StatusForbidden)
	env.call(t, token.AccessToken, http.MethodDelete, "/v1/users/"+admin.ID, nil).problem(t, http.StatusForbidden)

	// What the helpdesk holds, it may still do.
	env.call(t, token.AccessToken, http.MethodPatch, "/v1/users/"+victim.ID, map[string]any{"name": "Victor"}).
		expectStatus(t, http.StatusOK)
	env.call(t, token.AccessToken, http.MethodPut, "/v1/users/"+victim.ID+"/roles/user", nil).expectStatus(t, http.StatusNoContent)
}

func TestBuiltInRolesStay(t *testing.T) {
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "root")
	env.call(t, adminToken.AccessToken, http.MethodDelete, "/v1/roles/admin", nil).problem(t, http.StatusConflict)
	env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/roles/user", map[string]any{"name": "people"}).
		problem(t, http.StatusBadRequest)
}
