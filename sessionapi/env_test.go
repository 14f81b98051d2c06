package sessionapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/sessionapi"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
	"github.com/latchkey/latchkey/userapi"
)

// cursorPurpose is the key purpose cmd/latchkey derives the user API's
// cursor key with.
const cursorPurpose = "latchkey userapi cursor v1"

// apiUserAgent identifies the tests' API requests in audit events.
const apiUserAgent = "latchkey-sessionapi-test/1"

// User-Agent headers of real desktop browsers, sent by the test browsers so
// that the session API has something to describe.
const (
	chromeOnWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	firefoxOnLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
)

// logoutEvent is the member of a logout token's events claim that marks it
// as one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const logoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Scope sets the tests sign in with.
var (
	personScopes = []string{"openid", "profile", "offline_access", "account"}
	adminScopes  = []string{"openid", "profile", "offline_access", "account", "admin"}
)

// testEnv is the provider, the user API and the session API, each served
// over HTTP on a random loopback port. They are wired as `latchkey serve
// all` wires them: one database, one session store, and one logout.Ender
// whose back-channel notifier signs with the provider's key set. The
// backend is the one LATCHKEY_TEST_BACKEND selects (see package
// storagetest).
type testEnv struct {
	issuer         string
	userAPIURL     string
	sessionAPIURL  string
	sessionHandler http.Handler
	databaseURL    string
	secret         []byte
	store          *storage.Store
	sessions       storagetest.SessionStore
	// redisPrefix is the key prefix of sessions on the postgres backend,
	// empty on the sqlite backend, whose sessions live in memory.
	redisPrefix string
	verifier    *bearer.Verifier
	notifier    *backchannel.Notifier
	receiver    *logoutReceiver

	// app registered a back-channel logout URI, and other did not.
	app   testsupport.OAuthClient
	other testsupport.OAuthClient
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	ctx := context.Background()
	env := &testEnv{secret: make([]byte, 32)}
	_, _ = rand.Read(env.secret)

	// The database is opened from its URL, and not by
	// storagetest.NewDatabase, so that a replica can open a pool of its own.
	env.databaseURL = storagetest.DatabaseURL(t)
	db, err := storage.Open(ctx, env.databaseURL)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	env.store = storage.NewStore(db)

	if storagetest.Backend() == storagetest.Postgres {
		env.redisPrefix = "latchkey_test_" + rand.Text()[:12] + ":"
		env.sessions = openRedisSessions(t, env.redisPrefix)
		t.Cleanup(func() { deleteRedisKeys(t, env.redisPrefix) })
	} else {
		env.sessions = storage.NewMemorySessionStore()
	}

	keys, err := provider.NewKeySet(env.store, env.secret)
	if err != nil {
		t.Fatalf("new key set: %v", err)
	}
	if _, err := keys.EnsureActive(ctx, time.Hour, provider.AlgRS256, provider.AlgES256); err != nil {
		t.Fatalf("create signing keys: %v", err)
	}

	// The receiver is created before the notifier so that cleanup stops
	// the notifier first and no delivery meets a closed receiver.
	env.receiver = newLogoutReceiver(t)

	providerListener := testsupport.Listen(t)
	env.issuer = "http://" + providerListener.Addr().String()
	env.notifier, err = backchannel.New(backchannel.Config{
		Issuer: env.issuer, Signer: keys, Logger: testsupport.Logger(), Backoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("new back-channel notifier: %v", err)
	}
	notifierCtx, stopNotifier := context.WithCancel(context.Background())
	t.Cleanup(stopNotifier)
	env.notifier.Start(notifierCtx)
	ender := logout.NewEnder(env.sessions, env.store, env.notifier, testsupport.Logger())

	p, err := provider.New(provider.Config{
		Issuer: env.issuer, SystemSecret: env.secret, Logger: testsupport.Logger(), SessionEnder: ender,
	}, env.store, env.sessions, keys)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}
	testsupport.Serve(t, providerListener, p.Handler())

	env.verifier = testsupport.NewVerifier(t, env.issuer, testsupport.SessionAlive(env.sessions))
	cursorKey, err := provider.DeriveKey(env.secret, cursorPurpose)
	if err != nil {
		t.Fatalf("derive cursor key: %v", err)
	}
	mfaCodec, err := provider.NewMFACodec(env.secret)
	if err != nil {
		t.Fatalf("new MFA codec: %v", err)
	}
	users, err := userapi.New(userapi.Config{CursorKey: cursorKey, Logger: testsupport.Logger(), SessionEnder: ender, MFACodec: mfaCodec},
		env.store, env.sessions, env.verifier)
	if err != nil {
		t.Fatalf("new user API: %v", err)
	}
	userAPIListener := testsupport.Listen(t)
	env.userAPIURL = "http://" + userAPIListener.Addr().String()
	testsupport.Serve(t, userAPIListener, users.Handler())

	env.sessionHandler = sessionapi.New(env.store, env.sessions, ender, env.verifier, testsupport.Logger()).Handler()
	sessionAPIListener := testsupport.Listen(t)
	env.sessionAPIURL = "http://" + sessionAPIListener.Addr().String()
	testsupport.Serve(t, sessionAPIListener, env.sessionHandler)

	env.app = env.createClient(t, "Back-channel app", env.receiver.url())
	env.other = env.createClient(t, "Front-channel app", "")

	// Every test leaves an audit log whose hash chain must verify.
	testsupport.CheckAuditChainAtCleanup(t, env.store)
	return env
}

// openRedisSessions returns a session store on the test Redis server with
// its own connection pool, as a separate process would have.
func openRedisSessions(t testing.TB, prefix string) *storage.RedisSessionStore {
	t.Helper()
	client, err := storage.OpenRedis(context.Background(), storagetest.RedisURL())
	if err != nil {
		t.Fatalf("connect to Redis at %s: %v", storagetest.RedisURL(), err)
	}
	t.Cleanup(func() { client.Close() })
	return storage.NewRedisSessionStore(client, prefix)
}

// deleteRedisKeys deletes every key under prefix.
func deleteRedisKeys(t testing.TB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := storage.OpenRedis(ctx, storagetest.RedisURL())
	if err != nil {
		t.Logf("delete Redis keys under %s: %v", prefix, err)
		return
	}
	defer client.Close()
	iterator := client.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iterator.Next(ctx) {
		client.Del(ctx, iterator.Val())
	}
	if err := iterator.Err(); err != nil {
		t.Logf("delete Redis keys under %s: %v", prefix, err)
	}
}

// newReplica starts a second provider on the env's database and session
// store, each through a connection pool of its own, with the env's issuer
// and system secret, as another replica behind the same load balancer
// would run. It returns the replica's base URL.
func (e *testEnv) newReplica(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	if e.redisPrefix == "" {
		t.Fatal("a replica needs shared sessions: run with LATCHKEY_TEST_BACKEND=postgres")
	}

	db, err := storage.Open(ctx, e.databaseURL)
	if err != nil {
		t.Fatalf("open the replica's database pool: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	store := storage.NewStore(db)
	sessions := openRedisSessions(t, e.redisPrefix)

	keys, err := provider.NewKeySet(store, e.secret)
	if err != nil {
		t.Fatalf("new replica key set: %v", err)
	}
	if err := keys.Load(ctx); err != nil {
		t.Fatalf("load the replica's signing keys: %v", err)
	}
	p, err := provider.New(provider.Config{Issuer: e.issuer, SystemSecret: e.secret, Logger: testsupport.Logger()}, store, sessions, keys)
	if err != nil {
		t.Fatalf("new replica provider: %v", err)
	}
	listener := testsupport.Listen(t)
	testsupport.Serve(t, listener, p.Handler())
	return "http://" + listener.Addr().String()
}

// createClient registers a first-party confidential client that may
// request the admin scope. backchannelURI may be empty.
func (e *testEnv) createClient(t testing.TB, name, backchannelURI string) testsupport.OAuthClient {
	t.Helper()
	client := &storage.Client{
		ID:                       uuid.NewString(),
		Name:                     name,
		RedirectURIs:             []string{testsupport.CallbackURL},
		GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"openid", "profile", "email", "offline_access", "account", "admin"},
		FirstParty:               true,
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: provider.AlgRS256,
		BackchannelLogoutURI:     backchannelURI,
	}
	secret := testsupport.CreateClient(t, e.store, e.secret, client)
	return testsupport.OAuthClient{Issuer: e.issuer, ID: client.ID, Name: name, Secret: secret}
}

// createUser creates a user with a random password and returns both.
// Each user costs one argon2id hash, so tests create few.
func (e *testEnv) createUser(t testing.TB, username string) (*storage.User, string) {
	t.Helper()
	return testsupport.CreateUser(t, e.store, username)
}

// assignRole gives user the role named roleName directly in the store.
func (e *testEnv) assignRole(t testing.TB, user *storage.User, roleName string) {
	t.Helper()
	testsupport.AssignRole(t, e.store, user, roleName)
}

// newBrowser returns a person's browser with a fixed User-Agent header. It
// follows redirects inside the provider and its replicas on 127.0.0.1, and
// stops at any redirect that leaves them, such as the one to the client's
// callback.
func (e *testEnv) newBrowser(t testing.TB, userAgent string) *testsupport.Browser {
	t.Helper()
	return testsupport.NewBrowser(t, testsupport.BrowserOptions{
		UserAgent: userAgent,
		StopAt: func(next *http.Request) bool {
			return next.URL.Hostname() != "127.0.0.1" || strings.HasPrefix(next.URL.String(), testsupport.CallbackURL)
		},
	})
}

// silentAuthorization sends an authorization request of the app client with
// prompt=none from b to the provider at baseURL and returns the callback's
// query. The query contains a code while b's login session lives and
// error=login_required once it has ended.
func (e *testEnv) silentAuthorization(t testing.TB, b *testsupport.Browser, baseURL string) url.Values {
	t.Helper()
	authURL, _, _ := e.app.AuthorizationURL(personScopes, oauth2.SetAuthURLParam("prompt", "none"))
	return testsupport.CallbackParams(t, b.Get(baseURL+strings.TrimPrefix(authURL, e.issuer)))
}

// userinfoStatus returns the status of the provider's UserInfo endpoint for
// accessToken.
func (e *testEnv) userinfoStatus(t testing.TB, accessToken string) int {
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
	resp.Body.Close()
	return resp.StatusCode
}

// sessionAPI sends a request to the session API with accessToken as the
// bearer token, which may be empty.
func (e *testEnv) sessionAPI(t testing.TB, accessToken, method, path string) *testsupport.APIResponse {
	t.Helper()
	return testsupport.APIClient{BaseURL: e.sessionAPIURL, UserAgent: apiUserAgent}.Call(t, accessToken, method, path, nil)
}

// userAPI sends a request to the user API with accessToken as the bearer
// token.
func (e *testEnv) userAPI(t testing.TB, accessToken, method, path string) *testsupport.APIResponse {
	t.Helper()
	return testsupport.APIClient{BaseURL: e.userAPIURL, UserAgent: apiUserAgent}.Call(t, accessToken, method, path, nil)
}

// sessionBody is a login session as the session API lists it.
type sessionBody struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	Current      bool      `json:"current"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	AuthTime     time.Time `json:"auth_time"`
	ExpiresAt    time.Time `json:"expires_at"`
	// IdleExpiresAt is when the session ends unless it is used again.
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	AMR           []string  `json:"amr"`
	IPAddress     string    `json:"ip_address"`
	UserAgent     string    `json:"user_agent"`
	Device        string    `json:"device"`
	Browser       string    `json:"browser"`
	Clients       []struct {
		ClientID string `json:"client_id"`
		Name     string `json:"name"`
	} `json:"clients"`
}

// clientIDs returns the ids of the session's clients in listed order.
func (s sessionBody) clientIDs() []string {
	ids := []string{}
	for _, client := range s.Clients {
		ids = append(ids, client.ClientID)
	}
	return ids
}

// listSessions reads path, a session listing, with accessToken and returns
// the sessions by id.
func (e *testEnv) listSessions(t testing.TB, accessToken, path string) map[string]sessionBody {
	t.Helper()
	response := e.sessionAPI(t, accessToken, http.MethodGet, path)
	response.ExpectStatus(t, http.StatusOK)
	if cacheControl := response.Header.Get("Cache-Control"); cacheControl != "no-store" {
		t.Errorf("GET %s: Cache-Control %q, expected no-store", path, cacheControl)
	}
	var list struct {
		Sessions []sessionBody `json:"sessions"`
	}
	response.Decode(t, &list)
	if list.Sessions == nil {
		t.Fatalf("GET %s: sessions is not a JSON array: %s", path, response.Body)
	}
	byID := map[string]sessionBody{}
	for _, session := range list.Sessions {
		byID[session.ID] = session
	}
	if len(byID) != len(list.Sessions) {
		t.Errorf("GET %s lists a session twice: %s", path, response.Body)
	}
	return byID
}

// sessionIDs returns the sorted keys of a listing.
func sessionIDs(sessions map[string]sessionBody) []string {
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// sortedStrings returns a sorted copy of values.
func sortedStrings(values ...string) []string {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	return sorted
}

// statsBody is GET /v1/sessions/stats.
type statsBody struct {
	ActiveSessions int64 `json:"active_sessions"`
	ActiveUsers    struct {
		Now     int64 `json:"now"`
		Last24h int64 `json:"last_24h"`
		Last30d int64 `json:"last_30d"`
	} `json:"active_users"`
	LoginsPerHour []struct {
		Hour   time.Time `json:"hour"`
		Logins int64     `json:"logins"`
	} `json:"logins_per_hour"`
	SessionsPerClient map[string]int64 `json:"sessions_per_client"`
	MFASessions       int64            `json:"mfa_sessions"`
	MFAShare          float64          `json:"mfa_share"`
}

// sessionID returns the sid claim of a token's access token, which is its
// login session's public id.
func sessionID(t testing.TB, token *oauth2.Token) string {
	t.Helper()
	sid, _ := testsupport.JWTPayload(t, token.AccessToken)["sid"].(string)
	if sid == "" {
		t.Fatal("access token has no sid claim")
	}
	return sid
}

// sessionEndedEvents returns the session.ended audit events whose subject
// is userID, newest first.
func (e *testEnv) sessionEndedEvents(t testing.TB, userID string) []*storage.AuditEvent {
	t.Helper()
	events, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{
		Subject: userID, Action: logout.ActionSessionEnded, Limit: 100,
	})
	if err != nil {
		t.Fatalf("list audit events: %v", err)
	}
	return events
}

// waitForLogouts waits until the notifier has finished every back-channel
// logout queued so far. The ender queues them before the request that
// ended the session returns, so none is missed.
func (e *testEnv) waitForLogouts(t testing.TB) {
	t.Helper()
	// The deadline only turns a hung notifier into a failure with a message.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.notifier.Wait(ctx); err != nil {
		t.Fatalf("wait for back-channel logouts: %v", err)
	}
}

// logoutReceiver is a relying party's back-channel logout endpoint on
// 127.0.0.1 that records every logout token it receives and responds 200.
type logoutReceiver struct {
	server *httptest.Server

	mu     sync.Mutex
	tokens []string
}

func newLogoutReceiver(t testing.TB) *logoutReceiver {
	t.Helper()
	r := &logoutReceiver{}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			http.Error(w, "logout tokens are POSTed", http.StatusMethodNotAllowed)
			return
		}
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.tokens = append(r.tokens, req.PostForm.Get("logout_token"))
		r.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.server.Close)
	return r
}

func (r *logoutReceiver) url() string { return r.server.URL + "/backchannel-logout" }

// received returns the logout tokens received so far, oldest first.
func (r *logoutReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

// logoutToken is a verified logout token.
type logoutToken struct {
	header jose.Header
	claims map[string]any
}

// verifyLogoutToken checks raw's signature against the key that the
// provider's JWKS, found through discovery, publishes under raw's kid, and
// returns its header and claims.
func (e *testEnv) verifyLogoutToken(t testing.TB, raw string) logoutToken {
	t.Helper()
	var discovery struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &discovery)
	if discovery.JWKSURI == "" {
		t.Fatal("discovery document has no jwks_uri")
	}
	var keys jose.JSONWebKeySet
	getJSON(t, discovery.JWKSURI, &keys)

	signed, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse logout token: %v", err)
	}
	if len(signed.Signatures) != 1 {
		t.Fatalf("logout token has %d signatures, expected 1", len(signed.Signatures))
	}
	header := signed.Signatures[0].Protected
	matching := keys.Key(header.KeyID)
	if len(matching) != 1 {
		t.Fatalf("JWKS has %d keys with the logout token's kid %q, expected 1", len(matching), header.KeyID)
	}
	payload, err := signed.Verify(matching[0].Public())
	if err != nil {
		t.Fatalf("verify logout token signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("logout token payload is not JSON: %v", err)
	}
	return logoutToken{header: header, claims: claims}
}

// checkLogoutToken checks a logout token's header and claims as OpenID
// Connect Back-Channel Logout 1.0 §2.4 requires for a token that ends
// session sessionID of user userID at client clientID.
func (e *testEnv) checkLogoutToken(t testing.TB, token logoutToken, clientID, userID, sessionID string) {
	t.Helper()
	if typ, _ := token.header.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		t.Errorf("logout token typ header %q, expected logout+jwt", typ)
	}

	if token.claims["iss"] != e.issuer {
		t.Errorf("logout token iss %v, expected %s", token.claims["iss"], e.issuer)
	}
	audience := token.claims["aud"]
	if list, ok := audience.([]any); ok && len(list) == 1 {
		audience = list[0]
	}
	if audience != clientID {
		t.Errorf("logout token aud %v, expected the client id %s", token.claims["aud"], clientID)
	}

	if token.claims["sub"] != userID {
		t.Errorf("logout token sub %v, expected the user id %s", token.claims["sub"], userID)
	}
	if token.claims["sid"] != sessionID {
		t.Errorf("logout token sid %v, expected %s", token.claims["sid"], sessionID)
	}
	if jti, _ := token.claims["jti"].(string); jti == "" {
		t.Errorf("logout token has no jti: %v", token.claims)
	}

	issuedAt, _ := token.claims["iat"].(float64)
	expiry, _ := token.claims["exp"].(float64)
	if issuedAt == 0 || expiry <= issuedAt {
		t.Errorf("logout token iat %v and exp %v, expected both with exp after iat", token.claims["iat"], token.claims["exp"])
	}

	events, _ := token.claims["events"].(map[string]any)
	if _, ok := events[logoutEvent]; !ok {
		t.Errorf("logout token events %v, expected the member %s", token.claims["events"], logoutEvent)
	}
	if _, ok := token.claims["nonce"]; ok {
		t.Errorf("logout token has a nonce claim, which §2.4 prohibits: %v", token.claims["nonce"])
	}
}

// getJSON fetches rawURL and decodes its JSON body into target.
func getJSON(t testing.TB, rawURL string, target any) {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, expected 200", rawURL, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(target); err != nil {
		t.Fatalf("GET %s: body is not the expected JSON: %v", rawURL, err)
	}
}
