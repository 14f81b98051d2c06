package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

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

	listener := testsupport.Listen(t)
	if issuer == "" {
		issuer = "http://" + listener.Addr().String()
	}
	cfg := provider.Config{
		Issuer:       issuer,
		SystemSecret: backend.secret,
		Logger:       testsupport.Logger(),
		// The tests serve jwks_uri and request_uri documents on 127.0.0.1.
		AllowPrivateFetches: true,
	}
	for _, f := range configure {
		f(&cfg)
	}
	p, err := provider.New(cfg, store, backend.sessions, keys)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}

	handler := p.Handler()
	server := testsupport.Serve(t, listener, handler)

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
	responseTypes  []string
}

// createClient registers a client and returns its id and secret.
func (e *testEnv) createClient(t testing.TB, spec clientSpec) (string, string) {
	t.Helper()
	return e.createClientWithID(t, uuid.NewString(), spec)
}

// createClientWithID registers a client under a chosen id.
func (e *testEnv) createClientWithID(t testing.TB, id string, spec clientSpec) (string, string) {
	t.Helper()
	client := &storage.Client{
		ID:                       id,
		Name:                     "Test app",
		RedirectURIs:             []string{testsupport.CallbackURL},
		PostLogoutRedirectURIs:   spec.postLogout,
		GrantTypes:               spec.grantTypes,
		ResponseTypes:            spec.responseTypes,
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

	if !spec.public {
		return client.ID, testsupport.CreateClient(t, e.store, e.secret, client)
	}
	client.TokenEndpointAuthMethod = "none"
	client.GrantTypes = []string{"authorization_code", "refresh_token"}
	if err := e.store.CreateClient(context.Background(), client); err != nil {
		t.Fatalf("create client: %v", err)
	}
	return client.ID, ""
}

// createUser creates a user with a random password and returns both.
func (e *testEnv) createUser(t testing.TB, username string) (*storage.User, string) {
	t.Helper()
	return testsupport.CreateUser(t, e.store, username)
}

// browser is a person's browser that stops at the relying party, because
// nothing listens there.
type browser struct {
	*testsupport.Browser
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	return &browser{testsupport.NewBrowser(t, testsupport.BrowserOptions{
		StopAt: func(next *http.Request) bool {
			return strings.HasPrefix(next.URL.String(), "http://127.0.0.1:8080/")
		},
	})}
}

// decide submits the consent form shown on p.
func (b *browser) decide(issuer string, p *testsupport.Page, decision string) *testsupport.Page {
	b.T.Helper()
	if p.URL.Path != "/consent" || p.Status != http.StatusOK {
		b.T.Fatalf("expected the consent page, got %d at %s: %.300s", p.Status, p.URL, p.Body)
	}
	form := testsupport.HiddenInputs(b.T, p.Body)
	form.Set("decision", decision)
	return b.PostForm(issuer+"/consent", form)
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
