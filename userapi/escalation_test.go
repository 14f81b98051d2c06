package userapi_test

import (
	"context"
	"net/http"
	"strings"
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
	}).ExpectStatus(t, http.StatusCreated)
	helper, password := env.createUser(t, "helen")
	env.assignRole(t, helper, "helpdesk")
	token := env.signIn(t, env.newBrowser(t), "helen", password, adminScopes...)

	env.call(t, token.AccessToken, http.MethodPost, "/v1/users", map[string]any{
		"username": "mallet", "email": "mallet@example.com", "password": "a long password", "roles": []string{"admin"},
	}).Problem(t, http.StatusBadRequest)

	victim, _ := env.createUser(t, "victor")
	env.call(t, token.AccessToken, http.MethodPut, "/v1/users/"+victim.ID+"/roles/admin", nil).Problem(t, http.StatusForbidden)
	env.call(t, token.AccessToken, http.MethodPost, "/v1/roles", map[string]any{
		"name": "sneaky", "permissions": []string{storage.PermissionAuditRead},
	}).Problem(t, http.StatusBadRequest)

	admin, err := env.store.GetUserByUsername(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	env.call(t, token.AccessToken, http.MethodPatch, "/v1/users/"+admin.ID, map[string]any{"email": "helen@example.com"}).
		Problem(t, http.StatusForbidden)
	env.call(t, token.AccessToken, http.MethodPost, "/v1/users/"+admin.ID+"/disable", nil).Problem(t, http.StatusForbidden)
	env.call(t, token.AccessToken, http.MethodDelete, "/v1/users/"+admin.ID, nil).Problem(t, http.StatusForbidden)

	// What the helpdesk holds, it may still do.
	env.call(t, token.AccessToken, http.MethodPatch, "/v1/users/"+victim.ID, map[string]any{"name": "Victor"}).
		ExpectStatus(t, http.StatusOK)
	env.call(t, token.AccessToken, http.MethodPut, "/v1/users/"+victim.ID+"/roles/user", nil).ExpectStatus(t, http.StatusNoContent)
}

func TestBuiltInRolesStay(t *testing.T) {
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "root")
	env.call(t, adminToken.AccessToken, http.MethodDelete, "/v1/roles/admin", nil).Problem(t, http.StatusConflict)
	env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/roles/user", map[string]any{"name": "people"}).
		Problem(t, http.StatusBadRequest)
}

func TestRoleChangesRespectItsHolders(t *testing.T) {
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "root")
	env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/roles", map[string]any{
		"name": "rolekeeper", "permissions": []string{storage.PermissionUsersRead, storage.PermissionRolesWrite},
	}).ExpectStatus(t, http.StatusCreated)
	env.call(t, adminToken.AccessToken, http.MethodPost, "/v1/roles", map[string]any{
		"name": "readers", "permissions": []string{storage.PermissionUsersRead},
	}).ExpectStatus(t, http.StatusCreated)
	admin, err := env.store.GetUserByUsername(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	env.assignRole(t, admin, "readers")
	env.assignRole(t, admin, storage.RoleUser)

	keeper, password := env.createUser(t, "kira")
	env.assignRole(t, keeper, "rolekeeper")
	token := env.signIn(t, env.newBrowser(t), "kira", password, adminScopes...)

	env.call(t, token.AccessToken, http.MethodDelete, "/v1/roles/readers", nil).Problem(t, http.StatusForbidden)
	env.call(t, token.AccessToken, http.MethodPatch, "/v1/roles/user", map[string]any{"permissions": []string{storage.PermissionUsersRead}}).
		Problem(t, http.StatusForbidden)

	denied := env.call(t, adminToken.AccessToken, http.MethodGet, "/v1/audit-events?action=admin.request_denied&actor="+keeper.ID, nil)
	denied.ExpectStatus(t, http.StatusOK)
	var events struct {
		Items []map[string]any `json:"items"`
	}
	denied.Decode(t, &events)
	if len(events.Items) != 2 {
		t.Errorf("audit events of refused requests = %d, want 2", len(events.Items))
	}
}

func TestVerifiedEmailStaysUnique(t *testing.T) {
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "root")
	other, _ := env.createUser(t, "olive")
	env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/users/"+other.ID,
		map[string]any{"email": "root@example.com", "email_verified": true}).Problem(t, http.StatusConflict)
	env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/users/"+other.ID,
		map[string]any{"email": "olive.new@example.com", "email_verified": true}).ExpectStatus(t, http.StatusOK)
}

func TestUsernamesAndBodiesAreStrict(t *testing.T) {
	env := newTestEnv(t)
	_, adminToken := env.createAdmin(t, "root")
	other, _ := env.createUser(t, "ursula")
	for _, username := range []string{"dеmo", "dem\u200bo", "a/b", " "} {
		env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/users/"+other.ID, map[string]any{"username": username}).
			Problem(t, http.StatusBadRequest)
	}
	env.call(t, adminToken.AccessToken, http.MethodPatch, "/v1/me", map[string]any{"name": "a\u0000b"}).
		Problem(t, http.StatusBadRequest)

	req, _ := http.NewRequest(http.MethodPatch, env.apiURL+"/v1/me", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", "Bearer "+adminToken.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d, want 415", resp.StatusCode)
	}
}
