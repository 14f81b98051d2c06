package userapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ory/fosite"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
	"github.com/latchkey/latchkey/userapi"
)

// callbackURL is the test client's redirect URI. Nothing listens there,
// because the browser stops at the provider's redirect and never fetches it.
const callbackURL = "http://127.0.0.1:8080/callback"

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
	issuer       string
	apiURL       string
	apiHandler   http.Handler
	store        *storage.Store
	sessions     storagetest.SessionStore
	clientID     string
	clientSecret string
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

	providerListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + providerListener.Addr().String()
	p, err := provider.New(provider.Config{Issuer: issuer, SystemSecret: secret, Logger: testLogger()}, store, sessions, keys)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}
	serve(t, providerListener, p.Handler())

	keysCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// As latchkey serve does when the sessions are shared, tokens of ended
	// login sessions are rejected.
	verifier, err := bearer.New(keysCtx, bearer.Config{Issuer: issuer, Audience: issuer, Logger: testLogger(),
		SessionCheck: func(ctx context.Context, sid string) error {
			// As serve does: an unreachable store is 503, not a rejection.
			_, err := sessions.Get(ctx, sid)
			if err != nil && !errors.Is(err, fosite.ErrNotFound) {
				return fmt.Errorf("%w: %v", bearer.ErrUnavailable, err)
			}
			return err
		}})
	if err != nil {
		t.Fatalf("new token verifier: %v", err)
	}
	if err := verifier.Refresh(keysCtx); err != nil {
		t.Fatalf("fetch the provider's keys: %v", err)
	}
	cursorKey, err := provider.DeriveKey(secret, cursorPurpose)
	if err != nil {
		t.Fatalf("derive cursor key: %v", err)
	}
	mfaCodec, err := provider.NewMFACodec(secret)
	if err != nil {
		t.Fatalf("new MFA codec: %v", err)
	}
	api, err := userapi.New(userapi.Config{CursorKey: cursorKey, Logger: testLogger(), MFACodec: mfaCodec}, store, sessions, verifier)
	if err != nil {
		t.Fatalf("new user API: %v", err)
	}
	apiListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiHandler := api.Handler()
	serve(t, apiListener, apiHandler)

	env := &testEnv{
		issuer:           issuer,
		apiURL:           "http://" + apiListener.Addr().String(),
		apiHandler:       apiHandler,
		store:            store,
		sessions:         sessions,
		bulkPasswordHash: provider.HashPassword(rand.Text()),
	}
	env.clientID, env.clientSecret = env.createClient(t, secret)

	// Every test leaves an audit log whose hash chain must verify. Cleanups
	// run last-in first-out, so this runs while the database is still open.
	t.Cleanup(func() {
		result, err := store.VerifyAuditChain(context.Background())
		if err != nil {
			t.Errorf("verify audit chain: %v", err)
			return
		}
		if result.BrokenSeq != 0 {
			t.Errorf("audit chain broken at seq %d (%s) after %d intact rows", result.BrokenSeq, result.Reason, result.Checked)
		}
	})
	return env
}

// serve serves handler on listener until the test ends.
func serve(t testing.TB, listener net.Listener, handler http.Handler) {
	t.Helper()
	server := httptest.NewUnstartedServer(handler)
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)
}

// createClient registers the first-party confidential client every test
// signs in with, and returns its id and secret.
func (e *testEnv) createClient(t testing.TB, systemSecret []byte) (string, string) {
	t.Helper()
	ctx := context.Background()
	hasher, err := provider.NewSecretHasher(systemSecret)
	if err != nil {
		t.Fatal(err)
	}
	secret := provider.GenerateClientSecret()
	hash, err := hasher.Hash(ctx, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	client := &storage.Client{
		ID:                       uuid.NewString(),
		Name:                     "User API test app",
		SecretHash:               hash,
		RedirectURIs:             []string{callbackURL},
		GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes:            []string{"code"},
		Scopes:                   clientScopes,
		FirstParty:               true,
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: provider.AlgRS256,
	}
	if err := e.store.CreateClient(ctx, client); err != nil {
		t.Fatalf("create client: %v", err)
	}
	return client.ID, secret
}

// createUser creates a user with a random password and returns both.
func (e *testEnv) createUser(t testing.TB, username string) (*storage.User, string) {
	t.Helper()
	password := rand.Text()
	user := &storage.User{
		ID:            uuid.NewString(),
		Username:      username,
		Email:         username + "@example.com",
		EmailVerified: true,
		PasswordHash:  provider.HashPassword(password),
		Name:          "Test " + username,
		GivenName:     "Test",
		FamilyName:    username,
	}
	if err := e.store.CreateUser(context.Background(), user); err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
	return user, password
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
	ctx := context.Background()
	role, err := e.store.GetRole(ctx, roleName)
	if err != nil {
		t.Fatalf("get role %s: %v", roleName, err)
	}
	if err := e.store.AssignRole(ctx, user.ID, role.ID); err != nil {
		t.Fatalf("assign role %s to %s: %v", roleName, user.Username, err)
	}
}

// createAdmin creates a user with the built-in admin role and returns the
// user with an access token granted adminScopes.
func (e *testEnv) createAdmin(t testing.TB, username string) (*storage.User, *oauth2.Token) {
	t.Helper()
	admin, password := e.createUser(t, username)
	e.assignRole(t, admin, storage.RoleAdmin)
	return admin, e.signIn(t, e.newBrowser(t), username, password, adminScopes...)
}

// oauthConfig is the test client's x/oauth2 configuration for scopes.
func (e *testEnv) oauthConfig(scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     e.clientID,
		ClientSecret: e.clientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   e.issuer + "/oauth2/auth",
			TokenURL:  e.issuer + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: callbackURL,
		Scopes:      scopes,
	}
}

// browser is a person's browser: a cookie jar, redirects followed inside
// the provider, and a stop at any redirect that leaves it, such as the one
// to the client's callback.
type browser struct {
	t      testing.TB
	client *http.Client
}

func (e *testEnv) newBrowser(t testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := url.Parse(e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, client: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != issuer.Scheme || req.URL.Host != issuer.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// page is a fetched response with its body read.
type page struct {
	status   int
	location string
	url      *url.URL
	body     string
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("read %s %s: %v", req.Method, req.URL, err)
	}
	return &page{status: resp.StatusCode, location: resp.Header.Get("Location"), url: resp.Request.URL, body: string(body)}
}

func (b *browser) get(rawURL string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// login fills in and submits the login form shown on loginPage.
func (b *browser) login(issuer string, loginPage *page, username, password string) *page {
	b.t.Helper()
	if loginPage.url.Path != "/login" || loginPage.status != http.StatusOK {
		b.t.Fatalf("expected the login page, got %d at %s: %.300s", loginPage.status, loginPage.url, loginPage.body)
	}
	form := hiddenInputs(b.t, loginPage.body)
	for _, name := range []string{"flow", "csrf_token"} {
		if form.Get(name) == "" {
			b.t.Fatalf("login page has no hidden input %s: %.300s", name, loginPage.body)
		}
	}
	form.Set("username", username)
	form.Set("password", password)
	req, err := http.NewRequest(http.MethodPost, issuer+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// hiddenInputs returns the values of a page's hidden inputs.
func hiddenInputs(t testing.TB, body string) url.Values {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	values := url.Values{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" {
			attributes := map[string]string{}
			for _, attribute := range n.Attr {
				attributes[attribute.Key] = attribute.Val
			}
			if attributes["type"] == "hidden" {
				values.Set(attributes["name"], attributes["value"])
			}
		}
		for child := n.FirstChild; child != nil; child = child.NextSibling {
			walk(child)
		}
	}
	walk(doc)
	return values
}

// callbackParams returns the query of the provider's redirect to the
// client's callback.
func callbackParams(t testing.TB, p *page) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		t.Fatalf("expected a redirect to the client, got %d at %s: %.400s", p.status, p.url, p.body)
	}
	if !strings.HasPrefix(p.location, callbackURL+"?") {
		t.Fatalf("expected a redirect to %s, got one to %q", callbackURL, p.location)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// authorizationURL returns an authorization request URL with PKCE S256,
// its state and its code verifier.
func (e *testEnv) authorizationURL(scopes []string, options ...oauth2.AuthCodeOption) (string, string, string) {
	verifier := oauth2.GenerateVerifier()
	state := "state-" + rand.Text()
	options = append(options, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-"+rand.Text()))
	return e.oauthConfig(scopes...).AuthCodeURL(state, options...), state, verifier
}

// signIn runs the authorization code flow with PKCE in b, submitting the
// login form if the provider shows it, and exchanges the code.
func (e *testEnv) signIn(t testing.TB, b *browser, username, password string, scopes ...string) *oauth2.Token {
	t.Helper()
	authURL, state, verifier := e.authorizationURL(scopes)
	next := b.get(authURL)
	if next.url.Path == "/login" {
		next = b.login(e.issuer, next, username, password)
	}
	params := callbackParams(t, next)
	if params.Get("error") != "" {
		t.Fatalf("authorization failed for %s: %s: %s", username, params.Get("error"), params.Get("error_description"))
	}
	if params.Get("state") != state {
		t.Fatalf("callback state = %q, expected %q", params.Get("state"), state)
	}

	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	token, err := e.oauthConfig(scopes...).Exchange(ctx, params.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange the code of %s: %v", username, err)
	}
	return token
}

// silentAuthorization sends an authorization request with prompt=none from
// b and returns the callback's query. It contains a code while b's login
// session lives and error=login_required once the session has ended.
func (e *testEnv) silentAuthorization(t testing.TB, b *browser) url.Values {
	t.Helper()
	authURL, _, _ := e.authorizationURL(personScopes, oauth2.SetAuthURLParam("prompt", "none"))
	return callbackParams(t, b.get(authURL))
}

// refresh exchanges a refresh token at the token endpoint and returns the
// status and the decoded JSON body.
func (e *testEnv) refresh(t testing.TB, refreshToken string) (int, map[string]any) {
	t.Helper()
	return e.tokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// clientCredentialsToken returns an access token of the test client acting
// for itself.
func (e *testEnv) clientCredentialsToken(t testing.TB, scope string) string {
	t.Helper()
	status, body := e.tokenRequest(t, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	if status != http.StatusOK {
		t.Fatalf("client_credentials grant: status %d, expected 200: %v", status, body)
	}
	token, _ := body["access_token"].(string)
	if token == "" {
		t.Fatalf("client_credentials response has no access_token: %v", body)
	}
	return token
}

func (e *testEnv) tokenRequest(t testing.TB, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(e.clientID), url.QueryEscape(e.clientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /oauth2/token: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("POST /oauth2/token: status %d with a body that is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
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

// apiResponse is a user API response with its body read.
type apiResponse struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

// call sends a request to the user API with accessToken as bearer token.
// body is sent as is when it is a string, and as JSON otherwise.
func (e *testEnv) call(t testing.TB, accessToken, method, path string, body any) *apiResponse {
	t.Helper()
	response, err := e.send(accessToken, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return response
}

// send is call without t, for goroutines other than the test's, which must
// not call t.Fatal.
func (e *testEnv) send(accessToken, method, path string, body any) (*apiResponse, error) {
	var reader io.Reader
	switch body := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(body)
	default:
		encoded, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(encoded)
	}

	req, err := http.NewRequest(method, e.apiURL+path, reader)
	if err != nil {
		return nil, err
	}
	if reader != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	req.Header.Set("User-Agent", userAgent)

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &apiResponse{method: method, path: path, status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// expectStatus fails the test now unless the response has status want.
func (r *apiResponse) expectStatus(t testing.TB, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s %s: status %d, expected %d: %.500s", r.method, r.path, r.status, want, r.body)
	}
}

// decode reads the JSON body into target.
func (r *apiResponse) decode(t testing.TB, target any) {
	t.Helper()
	if err := json.Unmarshal(r.body, target); err != nil {
		t.Fatalf("%s %s: body is not the expected JSON (%v): %.500s", r.method, r.path, err, r.body)
	}
}

// problem is an RFC 9457 problem document as the user API writes it.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// problem checks that the response is a problem document with status want
// and returns it.
func (r *apiResponse) problem(t testing.TB, want int) problem {
	t.Helper()
	r.expectStatus(t, want)
	if contentType := r.header.Get("Content-Type"); !strings.HasPrefix(contentType, "application/problem+json") {
		t.Errorf("%s %s: Content-Type %q, expected application/problem+json", r.method, r.path, contentType)
	}
	var document problem
	r.decode(t, &document)
	if document.Status != want {
		t.Errorf("%s %s: problem status %d, expected %d", r.method, r.path, document.Status, want)
	}
	return document
}

// fields returns the sorted names of the fields a problem reports.
func (p problem) fields() []string {
	names := make([]string, 0, len(p.Errors))
	for _, fieldError := range p.Errors {
		names = append(names, fieldError.Field)
	}
	slices.Sort(names)
	return names
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

// jwtPayload decodes the payload of a compact JWT without verifying it.
func jwtPayload(t testing.TB, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %d parts in %.80q", len(parts), raw)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(data, &claims); err != nil {
		t.Fatalf("JWT payload is not JSON: %v", err)
	}
	return claims
}

// testLogger discards logs unless LATCHKEY_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("LATCHKEY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
