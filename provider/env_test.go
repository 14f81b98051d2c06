package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/html"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

const callbackURL = "http://127.0.0.1:8080/callback"

// testEnv is a provider served over real HTTP on a random loopback port,
// backed by a fresh database and session store of the backend that
// LATCHKEY_TEST_BACKEND selects (see package storagetest).
type testEnv struct {
	db      *storage.Database
	issuer  string
	server  *httptest.Server
	handler http.Handler
	store   *storage.Store
	keys    *provider.KeySet
	secret  []byte
}

// sharedBackend is what replicas of the provider share: one database, one
// session store and one system secret.
type sharedBackend struct {
	databaseURL string
	sessions    provider.SessionStore
	secret      []byte
}

// newSharedBackend creates a migrated database and a session store.
func newSharedBackend(t testing.TB) *sharedBackend {
	t.Helper()
	databaseURL := storagetest.DatabaseURL(t)
	db, err := storage.Open(context.Background(), databaseURL)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return &sharedBackend{databaseURL: databaseURL, sessions: storagetest.NewSessionStore(t), secret: secret}
}

func newTestEnv(t testing.TB, configure ...func(*provider.Config)) *testEnv {
	t.Helper()
	return newReplica(t, newSharedBackend(t), "", configure...)
}

// newReplica starts a provider on backend with its own connection pool and
// key set, as a separate process would. An empty issuer means the replica's
// own URL.
func newReplica(t testing.TB, backend *sharedBackend, issuer string, configure ...func(*provider.Config)) *testEnv {
	t.Helper()
	ctx := context.Background()

	db, err := storage.Open(ctx, backend.databaseURL)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	store := storage.NewStore(db)

	keys, err := provider.NewKeySet(store, backend.secret)
	if err != nil {
		t.Fatal(err)
	}
	// Tests rotate keys and expect the new one to sign at once.
	keys.SetActivationDelay(0)
	if _, err := keys.EnsureActive(ctx, time.Hour, provider.AlgRS256, provider.AlgES256); err != nil {
		t.Fatalf("create keys: %v", err)
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if issuer == "" {
		issuer = "http://" + listener.Addr().String()
	}
	cfg := provider.Config{
		Issuer:       issuer,
		SystemSecret: backend.secret,
		Logger:       testLogger(),
	}
	for _, f := range configure {
		f(&cfg)
	}
	p, err := provider.New(cfg, store, backend.sessions, keys)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}

	handler := p.Handler()
	server := httptest.NewUnstartedServer(handler)
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)

	return &testEnv{db: db, issuer: issuer, server: server, handler: handler, store: store, keys: keys, secret: backend.secret}
}

type clientSpec struct {
	public         bool
	firstParty     bool
	allowPlainPKCE bool
	authMethod     string
	idTokenAlg     string
	grantTypes     []string
	scopes         []string
	audience       []string
	postLogout     []string
}

// createClient registers a client and returns its id and secret.
func (e *testEnv) createClient(t testing.TB, spec clientSpec) (string, string) {
	t.Helper()
	return e.createClientWithID(t, uuid.NewString(), spec)
}

// createClientWithID registers a client under a chosen id.
func (e *testEnv) createClientWithID(t testing.TB, id string, spec clientSpec) (string, string) {
	t.Helper()
	ctx := context.Background()
	client := &storage.Client{
		ID:                       id,
		Name:                     "Test app",
		RedirectURIs:             []string{callbackURL},
		PostLogoutRedirectURIs:   spec.postLogout,
		GrantTypes:               spec.grantTypes,
		ResponseTypes:            []string{"code"},
		Scopes:                   spec.scopes,
		Audience:                 spec.audience,
		Public:                   spec.public,
		FirstParty:               spec.firstParty,
		AllowPlainPKCE:           spec.allowPlainPKCE,
		TokenEndpointAuthMethod:  spec.authMethod,
		IDTokenSignedResponseAlg: spec.idTokenAlg,
	}
	if client.GrantTypes == nil {
		client.GrantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}
	}
	if client.Scopes == nil {
		client.Scopes = []string{"openid", "profile", "email", "offline_access", "api:read"}
	}
	if client.TokenEndpointAuthMethod == "" {
		client.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if client.IDTokenSignedResponseAlg == "" {
		client.IDTokenSignedResponseAlg = provider.AlgRS256
	}

	secret := ""
	if spec.public {
		client.TokenEndpointAuthMethod = "none"
		client.GrantTypes = []string{"authorization_code", "refresh_token"}
	} else {
		hasher, err := provider.NewSecretHasher(e.secret)
		if err != nil {
			t.Fatal(err)
		}
		secret = provider.GenerateClientSecret()
		client.SecretHash, _ = hasher.Hash(ctx, []byte(secret))
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
		t.Fatalf("create user: %v", err)
	}
	return user, password
}

// browser is a person's browser: a cookie jar, redirects followed inside
// the provider, and a stop at the relying party's callback.
type browser struct {
	t      testing.TB
	client *http.Client
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// Stop at the relying party: nothing listens there.
			if strings.HasPrefix(req.URL.String(), "http://127.0.0.1:8080/") {
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
	header   http.Header
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &page{
		status:   resp.StatusCode,
		location: resp.Header.Get("Location"),
		url:      resp.Request.URL,
		body:     string(body),
		header:   resp.Header,
	}
}

func (b *browser) get(rawURL string) *page {
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	return b.do(req)
}

func (b *browser) post(rawURL string, form url.Values) *page {
	req, _ := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// formFields returns the values of a page's hidden inputs.
func formFields(t testing.TB, body string) url.Values {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	values := url.Values{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
			}
			if attrs["type"] == "hidden" {
				values.Set(attrs["name"], attrs["value"])
			}
		}
		for child := n.FirstChild; child != nil; child = child.NextSibling {
			walk(child)
		}
	}
	walk(doc)
	return values
}

// login submits the login form shown on p and returns the next response.
func (b *browser) login(issuer string, p *page, username, password string) *page {
	b.t.Helper()
	if p.url.Path != "/login" || p.status != http.StatusOK {
		b.t.Fatalf("expected the login page, got %d at %s: %.300s", p.status, p.url, p.body)
	}
	form := formFields(b.t, p.body)
	form.Set("username", username)
	form.Set("password", password)
	return b.post(issuer+"/login", form)
}

// decide submits the consent form shown on p.
func (b *browser) decide(issuer string, p *page, decision string) *page {
	b.t.Helper()
	if p.url.Path != "/consent" || p.status != http.StatusOK {
		b.t.Fatalf("expected the consent page, got %d at %s: %.300s", p.status, p.url, p.body)
	}
	form := formFields(b.t, p.body)
	form.Set("decision", decision)
	return b.post(issuer+"/consent", form)
}

// callbackParams returns the query of a redirect to the relying party.
func callbackParams(t testing.TB, p *page) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		t.Fatalf("expected a redirect to the client, got %d at %s: %.400s", p.status, p.url, p.body)
	}
	if !strings.HasPrefix(p.location, callbackURL) {
		t.Fatalf("redirect to %q, not to the callback", p.location)
	}
	u, err := url.Parse(p.location)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func pkcePair() (verifier, challenge string) {
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	verifier = base64.RawURLEncoding.EncodeToString(buf)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// postForm sends a form to an endpoint, with HTTP Basic client
// authentication when clientID is set, and decodes a JSON response.
func postForm(t *testing.T, endpoint, clientID, secret string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var decoded map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &decoded); err != nil {
			t.Fatalf("POST %s: body is not JSON (%d): %.300s", endpoint, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, resp.Header, decoded
}

// testLogger discards logs unless LATCHKEY_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("LATCHKEY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
