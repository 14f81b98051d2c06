package userapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
	"github.com/latchkey/latchkey/userapi"
)

// cursorPurpose is the key purpose cmd/latchkey derives the cursor key
// with, so that the API is built exactly as `latchkey serve` builds it.
const cursorPurpose = "latchkey userapi cursor v1"

// userAgent identifies the test's API requests in audit events.
const userAgent = "latchkey-userapi-test/1"

// clientScopes are the scopes the test client may request.
var clientScopes = []string{"openid", "profile", "email", "phone", "roles", "offline_access", "account", "admin"}

// Scope sets the tests sign in with.
var (
	personScopes = []string{"openid", "profile", "offline_access", "account"}
	adminScopes  = []string{"openid", "profile", "offline_access", "account", "admin"}
)

// testEnv is the provider and the user API, each served over real HTTP on
// a random loopback port, sharing one fresh database and session store of
// the backend that LATCHKEY_TEST_BACKEND selects (see package storagetest).
type testEnv struct {
	issuer     string
	apiURL     string
	apiHandler http.Handler
	api        testsupport.APIClient
	store      *storage.Store
	sessions   storagetest.SessionStore
	// client is the first-party confidential client every test signs in
	// with.
	client testsupport.OAuthClient
	// bulkPasswordHash is one argon2id hash shared by users who never sign
	// in, because each hash takes 19 MiB of memory and two passes.
	bulkPasswordHash string
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	ctx := context.Background()

	db := storagetest.NewDatabase(t)
	store := storage.NewStore(db)
	sessions := storagetest.NewSessionStore(t)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	keys, err := provider.NewKeySet(store, secret)
	if err != nil {
		t.Fatalf("new key set: %v", err)
	}
	if _, err := keys.EnsureActive(ctx, time.Hour, provider.AlgRS256, provider.AlgES256); err != nil {
		t.Fatalf("create signing keys: %v", err)
	}

	providerListener := testsupport.Listen(t)
	issuer := "http://" + providerListener.Addr().String()
	p, err := provider.New(provider.Config{Issuer: issuer, SystemSecret: secret, Logger: testsupport.Logger()}, store, sessions, keys)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}
	testsupport.Serve(t, providerListener, p.Handler())

	// As latchkey serve does when the sessions are shared, tokens of ended
	// login sessions are rejected.
	verifier := testsupport.NewVerifier(t, issuer, testsupport.SessionAlive(sessions))
	cursorKey, err := provider.DeriveKey(secret, cursorPurpose)
	if err != nil {
		t.Fatalf("derive cursor key: %v", err)
	}
	mfaCodec, err := provider.NewMFACodec(secret)
	if err != nil {
		t.Fatalf("new MFA codec: %v", err)
	}
	api, err := userapi.New(userapi.Config{CursorKey: cursorKey, Logger: testsupport.Logger(), MFACodec: mfaCodec}, store, sessions, verifier)
	if err != nil {
		t.Fatalf("new user API: %v", err)
	}
	apiListener := testsupport.Listen(t)
	apiHandler := api.Handler()
	testsupport.Serve(t, apiListener, apiHandler)

	env := &testEnv{
		issuer:           issuer,
		apiURL:           "http://" + apiListener.Addr().String(),
		apiHandler:       apiHandler,
		store:            store,
		sessions:         sessions,
		bulkPasswordHash: provider.HashPassword(rand.Text()),
	}
	env.api = testsupport.APIClient{BaseURL: env.apiURL, UserAgent: userAgent}
	env.client = env.createClient(t, secret)

	// Every test leaves an audit log whose hash chain must verify.
	testsupport.CheckAuditChainAtCleanup(t, store)
	return env
}

// createClient registers the first-party confidential client every test
// signs in with.
func (e *testEnv) createClient(t testing.TB, systemSecret []byte) testsupport.OAuthClient {
	t.Helper()
	client := &storage.Client{
		ID:                       uuid.NewString(),
		Name:                     "User API test app",
		RedirectURIs:             []string{testsupport.CallbackURL},
		GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes:            []string{"code"},
		Scopes:                   clientScopes,
		FirstParty:               true,
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: provider.AlgRS256,
	}
	secret := testsupport.CreateClient(t, e.store, systemSecret, client)
	return testsupport.OAuthClient{Issuer: e.issuer, ID: client.ID, Name: client.Name, Secret: secret}
}

// createUser creates a user with a random password and returns both.
func (e *testEnv) createUser(t testing.TB, username string) (*storage.User, string) {
	t.Helper()
	return testsupport.CreateUser(t, e.store, username)
}

// createListedUser creates a user who never signs in, with the shared
// password hash.
func (e *testEnv) createListedUser(t testing.TB, username, name string) *storage.User {
	t.Helper()
	user := &storage.User{
		ID:           uuid.NewString(),
		Username:     username,
		Email:        username + "@example.com",
		PasswordHash: e.bulkPasswordHash,
		Name:         name,
	}
	if err := e.store.CreateUser(context.Background(), user); err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
	return user
}

// assignRole gives user the role named roleName directly in the store.
func (e *testEnv) assignRole(t testing.TB, user *storage.User, roleName string) {
	t.Helper()
	testsupport.AssignRole(t, e.store, user, roleName)
}

// createAdmin creates a user with the built-in admin role and returns the
// user with an access token granted adminScopes.
func (e *testEnv) createAdmin(t testing.TB, username string) (*storage.User, *oauth2.Token) {
	t.Helper()
	admin, password := e.createUser(t, username)
	e.assignRole(t, admin, storage.RoleAdmin)
	return admin, e.signIn(t, e.newBrowser(t), username, password, adminScopes...)
}

// browser is a person's browser that stops at any redirect that leaves the
// provider, such as the one to the client's callback.
type browser struct {
	*testsupport.Browser
}

func (e *testEnv) newBrowser(t testing.TB) *browser {
	t.Helper()
	issuer, err := url.Parse(e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{testsupport.NewBrowser(t, testsupport.BrowserOptions{
		StopAt: func(next *http.Request) bool {
			return next.URL.Scheme != issuer.Scheme || next.URL.Host != issuer.Host
		},
	})}
}

// signIn runs the authorization code flow with PKCE of the test client in
// b, submitting the login form if the provider shows it, and exchanges the
// code.
func (e *testEnv) signIn(t testing.TB, b *browser, username, password string, scopes ...string) *oauth2.Token {
	t.Helper()
	return e.client.SignIn(t, b.Browser, username, password, scopes)
}

// silentAuthorization sends an authorization request with prompt=none from
// b and returns the callback's query. It contains a code while b's login
// session lives and error=login_required once the session has ended.
func (e *testEnv) silentAuthorization(t testing.TB, b *browser) url.Values {
	t.Helper()
	authURL, _, _ := e.client.AuthorizationURL(personScopes, oauth2.SetAuthURLParam("prompt", "none"))
	return testsupport.CallbackParams(t, b.Get(authURL))
}

// userinfo calls the provider's UserInfo endpoint and returns its claims.
func (e *testEnv) userinfo(t testing.TB, accessToken string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /userinfo: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /userinfo: status %d, expected 200: %s", resp.StatusCode, body)
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		t.Fatalf("GET /userinfo: body is not JSON: %s", body)
	}
	return claims
}

// call sends a request to the user API with accessToken as bearer token.
// body is sent as is when it is a string, and as JSON otherwise.
func (e *testEnv) call(t testing.TB, accessToken, method, path string, body any) *testsupport.APIResponse {
	t.Helper()
	return e.api.Call(t, accessToken, method, path, body)
}

// send is call without t, for goroutines other than the test's, which must
// not call t.Fatal.
func (e *testEnv) send(accessToken, method, path string, body any) (*testsupport.APIResponse, error) {
	return e.api.Send(accessToken, method, path, body)
}

// userBody is a user as the API returns it.
type userBody struct {
	ID                  string `json:"id"`
	Username            string `json:"username"`
	Email               string `json:"email"`
	EmailVerified       bool   `json:"email_verified"`
	Name                string `json:"name"`
	GivenName           string `json:"given_name"`
	FamilyName          string `json:"family_name"`
	PreferredUsername   string `json:"preferred_username"`
	Picture             string `json:"picture"`
	Locale              string `json:"locale"`
	Zoneinfo            string `json:"zoneinfo"`
	PhoneNumber         string `json:"phone_number"`
	PhoneNumberVerified bool   `json:"phone_number_verified"`
	Disabled            bool   `json:"disabled"`
}

// userPage is one page of GET /v1/users.
type userPage struct {
	Items      []userBody `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

// auditEvent is an audit event as GET /v1/audit-events returns it.
type auditEvent struct {
	ID         string         `json:"id"`
	OccurredAt time.Time      `json:"occurred_at"`
	ActorType  string         `json:"actor_type"`
	ActorID    string         `json:"actor_id"`
	Subject    string         `json:"subject"`
	Action     string         `json:"action"`
	Outcome    string         `json:"outcome"`
	IPAddress  string         `json:"ip_address"`
	UserAgent  string         `json:"user_agent"`
	RequestID  string         `json:"request_id"`
	Details    map[string]any `json:"details"`
}

// auditPage is one page of GET /v1/audit-events.
type auditPage struct {
	Items      []auditEvent `json:"items"`
	NextCursor string       `json:"next_cursor"`
}
