package storage_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/storage"
)

func TestStoreSQLite(t *testing.T) {
	runStoreContract(t, func(t *testing.T) *storage.Store {
		t.Helper()
		ctx := t.Context()

		db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
		if err != nil {
			t.Fatalf("open SQLite database: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("close SQLite database: %v", err)
			}
		})

		if _, err := db.Migrate(ctx); err != nil {
			t.Fatalf("migrate SQLite database: %v", err)
		}
		return storage.NewStore(db)
	})
}

func TestMemorySessionStore(t *testing.T) {
	runSessionStoreContract(t, func(t *testing.T) loginSessionStore {
		return storage.NewMemorySessionStore()
	})
	runSessionStatsContract(t, func(t *testing.T) scriptedSessionStore {
		return storage.NewMemorySessionStore()
	})
	runElevateContract(t, func(t *testing.T) scriptedSessionStore {
		return storage.NewMemorySessionStore()
	})
}

// User IDs are UUIDs, the type some backends give the users.id column.
const (
	userID1 = "6a0f3c1e-8d2b-4f6a-9c3e-1b2d3e4f5a61"
	userID2 = "6a0f3c1e-8d2b-4f6a-9c3e-1b2d3e4f5a62"
)

// runStoreContract checks the behaviour every database backend of
// storage.Store must share. newStore returns an empty, migrated store that
// belongs to t alone.
func runStoreContract(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("clients", func(t *testing.T) { testClients(t, newStore) })
	t.Run("client assertion jti", func(t *testing.T) { testClientAssertionJTI(t, newStore) })

	for _, kind := range requestKinds() {
		t.Run(kind.name, func(t *testing.T) { testRequestKind(t, newStore, kind) })
	}

	t.Run("authorize code", func(t *testing.T) { testAuthorizeCodeInvalidation(t, newStore) })
	t.Run("access token", func(t *testing.T) { testAccessTokenRevocation(t, newStore) })
	t.Run("refresh token", func(t *testing.T) { testRefreshTokenRotation(t, newStore) })
	t.Run("PKCE", func(t *testing.T) { testPKCEDelete(t, newStore) })
	t.Run("transactions", func(t *testing.T) { testTransactions(t, newStore) })
	t.Run("users", func(t *testing.T) { testUsers(t, newStore) })
	t.Run("consents", func(t *testing.T) { testConsents(t, newStore) })
	t.Run("signing keys", func(t *testing.T) { testSigningKeys(t, newStore) })
}

// newTestClient returns a confidential client with every field set, so that
// a round trip shows which field a backend drops.
func newTestClient(id string) *storage.Client {
	return &storage.Client{
		ID:                       id,
		Name:                     "Client " + id,
		SecretHash:               []byte("hash-of-" + id),
		RedirectURIs:             []string{"https://app.example.com/callback", "http://127.0.0.1:8080/callback"},
		PostLogoutRedirectURIs:   []string{"https://app.example.com/signed-out"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"openid", "profile", "email", "offline_access"},
		Audience:                 []string{"https://api.example.com"},
		FirstParty:               true,
		AllowPlainPKCE:           true,
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: "ES256",
		// The query checks that the URI is stored verbatim.
		BackchannelLogoutURI:             "https://app.example.com/backchannel-logout?tenant=eu&v=2",
		BackchannelLogoutSessionRequired: true,
		CreatedAt:                        time.Now().UTC().Truncate(time.Second),
	}
}

func createClient(t *testing.T, store *storage.Store, id string) *storage.Client {
	t.Helper()
	client := newTestClient(id)
	if err := store.CreateClient(t.Context(), client); err != nil {
		t.Fatalf("create client %s: %v", id, err)
	}
	return client
}

func newTestUser(id, username string) *storage.User {
	return &storage.User{
		ID:            id,
		Username:      username,
		Email:         strings.ToLower(strings.TrimSpace(username)) + "@example.com",
		EmailVerified: true,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g",
		Name:          "Alice Liddell",
		GivenName:     "Alice",
		FamilyName:    "Liddell",
	}
}

func createUser(t *testing.T, store *storage.Store, id, username string) *storage.User {
	t.Helper()
	user := newTestUser(id, username)
	if err := store.CreateUser(t.Context(), user); err != nil {
		t.Fatalf("create user %s: %v", id, err)
	}
	return user
}

// newTestRequest returns an authorization request of client under
// requestID, with a session that round-trips through JSON.
func newTestRequest(client fosite.Client, requestID string) *fosite.Request {
	now := time.Now().UTC().Truncate(time.Second)
	session := &openid.DefaultSession{
		Subject:  userID1,
		Username: "alice",
		Claims: &jwt.IDTokenClaims{
			Subject:     userID1,
			Issuer:      "https://id.example.com",
			Nonce:       "nonce-" + requestID,
			AuthTime:    now,
			RequestedAt: now,
			Extra:       map[string]any{"sid": "login-session-1"},
		},
		Headers: &jwt.Headers{Extra: map[string]any{"kid": "key-1"}},
		ExpiresAt: map[fosite.TokenType]time.Time{
			fosite.AuthorizeCode: now.Add(10 * time.Minute),
			fosite.AccessToken:   now.Add(time.Hour),
			fosite.RefreshToken:  now.Add(30 * 24 * time.Hour),
		},
	}
	return &fosite.Request{
		ID:                requestID,
		RequestedAt:       now,
		Client:            client,
		RequestedScope:    fosite.Arguments{"openid", "profile", "offline_access"},
		GrantedScope:      fosite.Arguments{"openid", "offline_access"},
		RequestedAudience: fosite.Arguments{"https://api.example.com", "https://files.example.com"},
		GrantedAudience:   fosite.Arguments{"https://api.example.com"},
		Form: map[string][]string{
			"redirect_uri": {"https://app.example.com/callback"},
			"nonce":        {"nonce-" + requestID},
			"prompt":       {"login consent"},
		},
		Session: session,
	}
}

// requestKind is one of the fosite record tables, reached through its own
// Create, Get and Delete methods.
type requestKind struct {
	name   string
	create func(ctx context.Context, store *storage.Store, signature string, request fosite.Requester) error
	get    func(ctx context.Context, store *storage.Store, signature string, session fosite.Session) (fosite.Requester, error)
	// delete is nil where the kind has no delete method that removes the
	// record.
	delete func(ctx context.Context, store *storage.Store, signature string) error
}

func requestKinds() []requestKind {
	return []requestKind{
		{
			name: "authorize code session",
			create: func(ctx context.Context, store *storage.Store, signature string, request fosite.Requester) error {
				return store.CreateAuthorizeCodeSession(ctx, signature, request)
			},
			get: func(ctx context.Context, store *storage.Store, signature string, session fosite.Session) (fosite.Requester, error) {
				return store.GetAuthorizeCodeSession(ctx, signature, session)
			},
		},
		{
			name: "access token session",
			create: func(ctx context.Context, store *storage.Store, signature string, request fosite.Requester) error {
				return store.CreateAccessTokenSession(ctx, signature, request)
			},
			get: func(ctx context.Context, store *storage.Store, signature string, session fosite.Session) (fosite.Requester, error) {
				return store.GetAccessTokenSession(ctx, signature, session)
			},
			delete: func(ctx context.Context, store *storage.Store, signature string) error {
				return store.DeleteAccessTokenSession(ctx, signature)
			},
		},
		{
			name: "refresh token session",
			create: func(ctx context.Context, store *storage.Store, signature string, request fosite.Requester) error {
				return store.CreateRefreshTokenSession(ctx, signature, "access-of-"+signature, request)
			},
			get: func(ctx context.Context, store *storage.Store, signature string, session fosite.Session) (fosite.Requester, error) {
				return store.GetRefreshTokenSession(ctx, signature, session)
			},
			delete: func(ctx context.Context, store *storage.Store, signature string) error {
				return store.DeleteRefreshTokenSession(ctx, signature)
			},
		},
		{
			name: "OpenID Connect session",
			create: func(ctx context.Context, store *storage.Store, signature string, request fosite.Requester) error {
				return store.CreateOpenIDConnectSession(ctx, signature, request)
			},
			get: func(ctx context.Context, store *storage.Store, signature string, session fosite.Session) (fosite.Requester, error) {
				return store.GetOpenIDConnectSession(ctx, signature, &fosite.Request{Session: session})
			},
			delete: func(ctx context.Context, store *storage.Store, signature string) error {
				return store.DeleteOpenIDConnectSession(ctx, signature)
			},
		},
		{
			name: "PKCE session",
			create: func(ctx context.Context, store *storage.Store, signature string, request fosite.Requester) error {
				return store.CreatePKCERequestSession(ctx, signature, request)
			},
			get: func(ctx context.Context, store *storage.Store, signature string, session fosite.Session) (fosite.Requester, error) {
				return store.GetPKCERequestSession(ctx, signature, session)
			},
		},
	}
}

// checkRequest reports every field of got that differs from want. session is
// the value passed to Get, which got must carry.
func checkRequest(t *testing.T, want *fosite.Request, got fosite.Requester, session *openid.DefaultSession) {
	t.Helper()

	if got.GetID() != want.ID {
		t.Errorf("request ID = %q, want %q", got.GetID(), want.ID)
	}
	if !got.GetRequestedAt().Equal(want.RequestedAt) {
		t.Errorf("requested at = %v, want %v", got.GetRequestedAt(), want.RequestedAt)
	}
	if got.GetClient() == nil {
		t.Errorf("client = nil, want client %q", want.Client.GetID())
	} else if got.GetClient().GetID() != want.Client.GetID() {
		t.Errorf("client ID = %q, want %q", got.GetClient().GetID(), want.Client.GetID())
	}
	if !slices.Equal(got.GetRequestedScopes(), want.RequestedScope) {
		t.Errorf("requested scopes = %q, want %q", got.GetRequestedScopes(), want.RequestedScope)
	}
	if !slices.Equal(got.GetGrantedScopes(), want.GrantedScope) {
		t.Errorf("granted scopes = %q, want %q", got.GetGrantedScopes(), want.GrantedScope)
	}
	if !slices.Equal(got.GetRequestedAudience(), want.RequestedAudience) {
		t.Errorf("requested audience = %q, want %q", got.GetRequestedAudience(), want.RequestedAudience)
	}
	if !slices.Equal(got.GetGrantedAudience(), want.GrantedAudience) {
		t.Errorf("granted audience = %q, want %q", got.GetGrantedAudience(), want.GrantedAudience)
	}
	if !reflect.DeepEqual(got.GetRequestForm(), want.Form) {
		t.Errorf("form = %v, want %v", got.GetRequestForm(), want.Form)
	}

	if got.GetSession() != session {
		t.Fatalf("session = %p, want the session passed to Get (%p)", got.GetSession(), session)
	}
	checkSession(t, want.Session.(*openid.DefaultSession), session)
}

func checkSession(t *testing.T, want, got *openid.DefaultSession) {
	t.Helper()

	if got.Subject != want.Subject {
		t.Errorf("session subject = %q, want %q", got.Subject, want.Subject)
	}
	if got.Username != want.Username {
		t.Errorf("session username = %q, want %q", got.Username, want.Username)
	}
	for kind, wantExpiry := range want.ExpiresAt {
		if !got.GetExpiresAt(kind).Equal(wantExpiry) {
			t.Errorf("session %s expiry = %v, want %v", kind, got.GetExpiresAt(kind), wantExpiry)
		}
	}

	if got.Claims == nil {
		t.Fatal("session claims = nil, want the stored ID token claims")
	}
	if got.Claims.Subject != want.Claims.Subject {
		t.Errorf("claims subject = %q, want %q", got.Claims.Subject, want.Claims.Subject)
	}
	if got.Claims.Issuer != want.Claims.Issuer {
		t.Errorf("claims issuer = %q, want %q", got.Claims.Issuer, want.Claims.Issuer)
	}
	if got.Claims.Nonce != want.Claims.Nonce {
		t.Errorf("claims nonce = %q, want %q", got.Claims.Nonce, want.Claims.Nonce)
	}
	if !got.Claims.AuthTime.Equal(want.Claims.AuthTime) {
		t.Errorf("claims auth_time = %v, want %v", got.Claims.AuthTime, want.Claims.AuthTime)
	}
	if got.Claims.Extra["sid"] != want.Claims.Extra["sid"] {
		t.Errorf("claims extra sid = %v, want %v", got.Claims.Extra["sid"], want.Claims.Extra["sid"])
	}

	if got.Headers == nil {
		t.Fatal("session headers = nil, want the stored ID token headers")
	}
	if got.Headers.Extra["kid"] != want.Headers.Extra["kid"] {
		t.Errorf("headers kid = %v, want %v", got.Headers.Extra["kid"], want.Headers.Extra["kid"])
	}
}

func testClients(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("client round-trips", func(t *testing.T) {
		store := newStore(t)
		want := createClient(t, store, "client-1")

		found, err := store.GetClient(t.Context(), "client-1")
		if err != nil {
			t.Fatalf("GetClient: %v", err)
		}
		got, ok := found.(*storage.Client)
		if !ok {
			t.Fatalf("GetClient returned %T, want *storage.Client", found)
		}

		fields := []struct {
			name      string
			got, want any
		}{
			{"ID", got.ID, want.ID},
			{"Name", got.Name, want.Name},
			{"SecretHash", got.SecretHash, want.SecretHash},
			{"RedirectURIs", got.RedirectURIs, want.RedirectURIs},
			{"PostLogoutRedirectURIs", got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs},
			{"GrantTypes", got.GrantTypes, want.GrantTypes},
			{"ResponseTypes", got.ResponseTypes, want.ResponseTypes},
			{"Scopes", got.Scopes, want.Scopes},
			{"Audience", got.Audience, want.Audience},
			{"Public", got.Public, want.Public},
			{"FirstParty", got.FirstParty, want.FirstParty},
			{"AllowPlainPKCE", got.AllowPlainPKCE, want.AllowPlainPKCE},
			{"TokenEndpointAuthMethod", got.TokenEndpointAuthMethod, want.TokenEndpointAuthMethod},
			{"IDTokenSignedResponseAlg", got.IDTokenSignedResponseAlg, want.IDTokenSignedResponseAlg},
			{"BackchannelLogoutURI", got.BackchannelLogoutURI, want.BackchannelLogoutURI},
			{"BackchannelLogoutSessionRequired", got.BackchannelLogoutSessionRequired, want.BackchannelLogoutSessionRequired},
		}
		for _, field := range fields {
			if !reflect.DeepEqual(field.got, field.want) {
				t.Errorf("client %s = %#v, want %#v", field.name, field.got, field.want)
			}
		}
		if !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("client CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
		}
	})

	t.Run("returned client is a copy", func(t *testing.T) {
		store := newStore(t)
		want := createClient(t, store, "client-1")

		first, err := store.GetClientByID(t.Context(), "client-1")
		if err != nil {
			t.Fatalf("GetClientByID: %v", err)
		}
		first.Name = "changed by caller"
		first.RedirectURIs[0] = "https://evil.example.com/callback"
		again, err := store.GetClientByID(t.Context(), "client-1")
		if err != nil {
			t.Fatalf("second GetClientByID: %v", err)
		}

		if again.Name != want.Name {
			t.Errorf("Name = %q, want %q", again.Name, want.Name)
		}
		if !slices.Equal(again.RedirectURIs, want.RedirectURIs) {
			t.Errorf("RedirectURIs = %q, want %q", again.RedirectURIs, want.RedirectURIs)
		}
	})

	t.Run("public client has no secret", func(t *testing.T) {
		store := newStore(t)
		client := newTestClient("public-1")
		client.Public = true
		client.SecretHash = nil
		client.TokenEndpointAuthMethod = "none"
		if err := store.CreateClient(t.Context(), client); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}

		got, err := store.GetClient(t.Context(), "public-1")
		if err != nil {
			t.Fatalf("GetClient: %v", err)
		}
		if !got.IsPublic() {
			t.Error("IsPublic() = false, want true")
		}
		if len(got.GetHashedSecret()) != 0 {
			t.Errorf("hashed secret = %q, want empty", got.GetHashedSecret())
		}
	})

	t.Run("unknown client is not found", func(t *testing.T) {
		store := newStore(t)
		createClient(t, store, "client-1")

		for _, id := range []string{"client-2", ""} {
			got, err := store.GetClient(t.Context(), id)
			if !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("GetClient(%q) error = %v, want fosite.ErrNotFound", id, err)
			}
			// A nil *Client inside the interface is not nil to the caller.
			if got != nil {
				t.Errorf("GetClient(%q) client = %#v (a non-nil interface), want nil", id, got)
			}
		}
	})

	t.Run("duplicate client ID is a conflict", func(t *testing.T) {
		store := newStore(t)
		createClient(t, store, "client-1")

		err := store.CreateClient(t.Context(), newTestClient("client-1"))
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("second CreateClient error = %v, want storage.ErrConflict", err)
		}
	})

	t.Run("clients are listed oldest first", func(t *testing.T) {
		store := newStore(t)
		base := time.Now().UTC().Truncate(time.Second)
		// client-c and client-d share a creation time, so the ID decides.
		created := []struct {
			id  string
			age time.Duration
		}{
			{"client-c", time.Hour},
			{"client-a", 3 * time.Hour},
			{"client-d", time.Hour},
			{"client-b", 2 * time.Hour},
		}
		for _, c := range created {
			client := newTestClient(c.id)
			client.CreatedAt = base.Add(-c.age)
			if err := store.CreateClient(t.Context(), client); err != nil {
				t.Fatalf("CreateClient(%s): %v", c.id, err)
			}
		}

		clients, err := store.ListClients(t.Context())
		if err != nil {
			t.Fatalf("ListClients: %v", err)
		}
		want := []string{"client-a", "client-b", "client-c", "client-d"}
		if got := clientIDs(clients); !slices.Equal(got, want) {
			t.Errorf("ListClients IDs = %q, want %q", got, want)
		}
	})

	t.Run("list order ignores time zone", func(t *testing.T) {
		store := newStore(t)
		base := time.Date(2025, 3, 1, 6, 0, 0, 0, time.UTC)
		// 10:00 at UTC+5 is 05:00 UTC, an hour before client-utc.
		east := newTestClient("client-east")
		east.CreatedAt = base.Add(-time.Hour).In(time.FixedZone("UTC+5", 5*60*60))
		utc := newTestClient("client-utc")
		utc.CreatedAt = base
		for _, client := range []*storage.Client{utc, east} {
			if err := store.CreateClient(t.Context(), client); err != nil {
				t.Fatalf("CreateClient(%s): %v", client.ID, err)
			}
		}

		clients, err := store.ListClients(t.Context())
		if err != nil {
			t.Fatalf("ListClients: %v", err)
		}
		want := []string{"client-east", "client-utc"}
		if got := clientIDs(clients); !slices.Equal(got, want) {
			t.Errorf("ListClients IDs = %q, want %q", got, want)
		}
	})

	t.Run("deleted client is not found", func(t *testing.T) {
		store := newStore(t)
		createClient(t, store, "client-1")
		createClient(t, store, "client-2")

		if err := store.DeleteClient(t.Context(), "client-1"); err != nil {
			t.Fatalf("DeleteClient: %v", err)
		}

		if _, err := store.GetClient(t.Context(), "client-1"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetClient(deleted) error = %v, want fosite.ErrNotFound", err)
		}
		if _, err := store.GetClient(t.Context(), "client-2"); err != nil {
			t.Errorf("GetClient(other client) error = %v, want nil", err)
		}
	})

	t.Run("deleting unknown client is not found", func(t *testing.T) {
		store := newStore(t)

		err := store.DeleteClient(t.Context(), "client-1")
		if !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("DeleteClient error = %v, want fosite.ErrNotFound", err)
		}
	})

	t.Run("deleting client removes its records", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		other := createClient(t, store, "client-2")
		createUser(t, store, userID1, "alice")
		for _, clientID := range []string{client.ID, other.ID} {
			consent := &storage.Consent{UserID: userID1, ClientID: clientID, Scopes: []string{"openid"}, GrantedAt: time.Now()}
			if err := store.SaveConsent(ctx, consent); err != nil {
				t.Fatalf("SaveConsent(%s): %v", clientID, err)
			}
		}
		for _, kind := range requestKinds() {
			if err := kind.create(ctx, store, "sig-"+client.ID, newTestRequest(client, "request-1")); err != nil {
				t.Fatalf("create %s of %s: %v", kind.name, client.ID, err)
			}
			if err := kind.create(ctx, store, "sig-"+other.ID, newTestRequest(other, "request-2")); err != nil {
				t.Fatalf("create %s of %s: %v", kind.name, other.ID, err)
			}
		}

		if err := store.DeleteClient(ctx, client.ID); err != nil {
			t.Fatalf("DeleteClient: %v", err)
		}
		// Reading a record also loads its client, so without the client
		// every read would fail whether the record is gone or not.
		// Registering the ID again makes a leftover record readable.
		createClient(t, store, client.ID)

		if _, err := store.GetConsent(ctx, userID1, client.ID); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetConsent(deleted client) error = %v, want fosite.ErrNotFound", err)
		}
		if _, err := store.GetConsent(ctx, userID1, other.ID); err != nil {
			t.Errorf("GetConsent(other client) error = %v, want nil", err)
		}
		for _, kind := range requestKinds() {
			if _, err := kind.get(ctx, store, "sig-"+client.ID, &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("get %s of deleted client: error = %v, want fosite.ErrNotFound", kind.name, err)
			}
			if _, err := kind.get(ctx, store, "sig-"+other.ID, &openid.DefaultSession{}); err != nil {
				t.Errorf("get %s of other client: error = %v, want nil", kind.name, err)
			}
		}
	})
}

func clientIDs(clients []*storage.Client) []string {
	ids := make([]string, 0, len(clients))
	for _, client := range clients {
		ids = append(ids, client.ID)
	}
	return ids
}

func testClientAssertionJTI(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("unused jti is valid", func(t *testing.T) {
		store := newStore(t)

		if err := store.ClientAssertionJWTValid(t.Context(), "jti-1"); err != nil {
			t.Errorf("ClientAssertionJWTValid error = %v, want nil", err)
		}
	})

	t.Run("live jti is known", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		if err := store.SetClientAssertionJWT(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("SetClientAssertionJWT: %v", err)
		}

		if err := store.ClientAssertionJWTValid(ctx, "jti-1"); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Errorf("ClientAssertionJWTValid error = %v, want fosite.ErrJTIKnown", err)
		}
		if err := store.SetClientAssertionJWT(ctx, "jti-1", time.Now().Add(time.Hour)); !errors.Is(err, fosite.ErrJTIKnown) {
			t.Errorf("second SetClientAssertionJWT error = %v, want fosite.ErrJTIKnown", err)
		}
		if err := store.ClientAssertionJWTValid(ctx, "jti-2"); err != nil {
			t.Errorf("ClientAssertionJWTValid(other jti) error = %v, want nil", err)
		}
	})

	t.Run("expired jti is not known", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		if err := store.SetClientAssertionJWT(ctx, "jti-1", time.Now().Add(-time.Minute)); err != nil {
			t.Fatalf("SetClientAssertionJWT: %v", err)
		}

		if err := store.ClientAssertionJWTValid(ctx, "jti-1"); err != nil {
			t.Errorf("ClientAssertionJWTValid error = %v, want nil", err)
		}
		if err := store.SetClientAssertionJWT(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
			t.Errorf("SetClientAssertionJWT over expired jti error = %v, want nil", err)
		}
	})
}

// testRequestKind checks what every fosite record table shares: a round
// trip, a lookup of an unknown signature and, where the kind has one, Delete.
func testRequestKind(t *testing.T, newStore func(t *testing.T) *storage.Store, kind requestKind) {
	t.Run("request round-trips", func(t *testing.T) {
		store := newStore(t)
		client := createClient(t, store, "client-1")
		want := newTestRequest(client, "request-1")
		if err := kind.create(t.Context(), store, "sig-1", want); err != nil {
			t.Fatalf("create: %v", err)
		}

		session := &openid.DefaultSession{}
		got, err := kind.get(t.Context(), store, "sig-1", session)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		checkRequest(t, want, got, session)
	})

	t.Run("nil session is accepted", func(t *testing.T) {
		store := newStore(t)
		client := createClient(t, store, "client-1")
		if err := kind.create(t.Context(), store, "sig-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("create: %v", err)
		}

		got, err := kind.get(t.Context(), store, "sig-1", nil)
		if err != nil {
			t.Fatalf("get with nil session: %v", err)
		}
		if got.GetID() != "request-1" {
			t.Errorf("request ID = %q, want %q", got.GetID(), "request-1")
		}
	})

	t.Run("unknown signature is not found", func(t *testing.T) {
		store := newStore(t)
		client := createClient(t, store, "client-1")
		if err := kind.create(t.Context(), store, "sig-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("create: %v", err)
		}

		// fosite passes "" for a token of the wrong shape.
		for _, signature := range []string{"sig-2", ""} {
			got, err := kind.get(t.Context(), store, signature, &openid.DefaultSession{})
			if !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("get(%q) error = %v, want fosite.ErrNotFound", signature, err)
			}
			if got != nil {
				t.Errorf("get(%q) request = %v, want nil", signature, got)
			}
		}
	})

	if kind.delete == nil {
		return
	}

	t.Run("deleted record is not found", func(t *testing.T) {
		store := newStore(t)
		client := createClient(t, store, "client-1")
		for _, signature := range []string{"sig-1", "sig-2"} {
			if err := kind.create(t.Context(), store, signature, newTestRequest(client, "request-1")); err != nil {
				t.Fatalf("create %s: %v", signature, err)
			}
		}

		if err := kind.delete(t.Context(), store, "sig-1"); err != nil {
			t.Fatalf("delete: %v", err)
		}

		if _, err := kind.get(t.Context(), store, "sig-1", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("get(deleted) error = %v, want fosite.ErrNotFound", err)
		}
		if _, err := kind.get(t.Context(), store, "sig-2", &openid.DefaultSession{}); err != nil {
			t.Errorf("get(other signature) error = %v, want nil", err)
		}
	})
}

func testAuthorizeCodeInvalidation(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("reused code is reported invalidated", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		if err := store.CreateAuthorizeCodeSession(ctx, "code-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("CreateAuthorizeCodeSession: %v", err)
		}

		if err := store.InvalidateAuthorizeCodeSession(ctx, "code-1"); err != nil {
			t.Fatalf("InvalidateAuthorizeCodeSession: %v", err)
		}

		// fosite revokes the grant's tokens by the ID of the request that
		// comes with the error, so the request must not be nil.
		got, err := store.GetAuthorizeCodeSession(ctx, "code-1", &openid.DefaultSession{})
		if !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
			t.Errorf("GetAuthorizeCodeSession error = %v, want fosite.ErrInvalidatedAuthorizeCode", err)
		}
		if got == nil {
			t.Fatal("GetAuthorizeCodeSession request = nil, want the stored request")
		}
		if got.GetID() != "request-1" {
			t.Errorf("request ID = %q, want %q", got.GetID(), "request-1")
		}
	})

	t.Run("second invalidation fails", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		if err := store.CreateAuthorizeCodeSession(ctx, "code-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("CreateAuthorizeCodeSession: %v", err)
		}
		if err := store.InvalidateAuthorizeCodeSession(ctx, "code-1"); err != nil {
			t.Fatalf("first InvalidateAuthorizeCodeSession: %v", err)
		}

		err := store.InvalidateAuthorizeCodeSession(ctx, "code-1")
		if !errors.Is(err, storage.ErrCodeAlreadyUsed) {
			t.Errorf("second InvalidateAuthorizeCodeSession error = %v, want storage.ErrCodeAlreadyUsed", err)
		}
	})

	t.Run("invalidation spares other codes", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		for _, signature := range []string{"code-1", "code-2"} {
			if err := store.CreateAuthorizeCodeSession(ctx, signature, newTestRequest(client, "request-"+signature)); err != nil {
				t.Fatalf("CreateAuthorizeCodeSession(%s): %v", signature, err)
			}
		}

		if err := store.InvalidateAuthorizeCodeSession(ctx, "code-1"); err != nil {
			t.Fatalf("InvalidateAuthorizeCodeSession: %v", err)
		}

		if _, err := store.GetAuthorizeCodeSession(ctx, "code-2", &openid.DefaultSession{}); err != nil {
			t.Errorf("GetAuthorizeCodeSession(other code) error = %v, want nil", err)
		}
	})
}

func testAccessTokenRevocation(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("revocation removes every token of the grant", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		tokens := []struct {
			signature, requestID string
			revoked              bool
		}{
			{"at-1", "request-1", true},
			{"at-2", "request-1", true},
			{"at-3", "request-2", false},
		}
		for _, token := range tokens {
			if err := store.CreateAccessTokenSession(ctx, token.signature, newTestRequest(client, token.requestID)); err != nil {
				t.Fatalf("CreateAccessTokenSession(%s): %v", token.signature, err)
			}
		}

		if err := store.RevokeAccessToken(ctx, "request-1"); err != nil {
			t.Fatalf("RevokeAccessToken: %v", err)
		}

		for _, token := range tokens {
			_, err := store.GetAccessTokenSession(ctx, token.signature, &openid.DefaultSession{})
			switch {
			case token.revoked && !errors.Is(err, fosite.ErrNotFound):
				t.Errorf("GetAccessTokenSession(%s of %s) error = %v, want fosite.ErrNotFound", token.signature, token.requestID, err)
			case !token.revoked && err != nil:
				t.Errorf("GetAccessTokenSession(%s of %s) error = %v, want nil", token.signature, token.requestID, err)
			}
		}
	})
}

func testRefreshTokenRotation(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("rotated token is reported inactive", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		if err := store.CreateRefreshTokenSession(ctx, "rt-1", "at-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("CreateRefreshTokenSession: %v", err)
		}

		if err := store.RotateRefreshToken(ctx, "request-1", "rt-1"); err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}

		// fosite treats the error as reuse and revokes the grant by the ID
		// of the request that comes with it, so the request must not be nil.
		got, err := store.GetRefreshTokenSession(ctx, "rt-1", &openid.DefaultSession{})
		if !errors.Is(err, fosite.ErrInactiveToken) {
			t.Errorf("GetRefreshTokenSession error = %v, want fosite.ErrInactiveToken", err)
		}
		if got == nil {
			t.Fatal("GetRefreshTokenSession request = nil, want the stored request")
		}
		if got.GetID() != "request-1" {
			t.Errorf("request ID = %q, want %q", got.GetID(), "request-1")
		}
	})

	t.Run("rotation removes the grant's access tokens", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		if err := store.CreateRefreshTokenSession(ctx, "rt-1", "at-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("CreateRefreshTokenSession: %v", err)
		}
		tokens := []struct {
			signature, requestID string
			revoked              bool
		}{
			{"at-1", "request-1", true},
			{"at-2", "request-1", true},
			{"at-3", "request-2", false},
		}
		for _, token := range tokens {
			if err := store.CreateAccessTokenSession(ctx, token.signature, newTestRequest(client, token.requestID)); err != nil {
				t.Fatalf("CreateAccessTokenSession(%s): %v", token.signature, err)
			}
		}

		if err := store.RotateRefreshToken(ctx, "request-1", "rt-1"); err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}

		for _, token := range tokens {
			_, err := store.GetAccessTokenSession(ctx, token.signature, &openid.DefaultSession{})
			switch {
			case token.revoked && !errors.Is(err, fosite.ErrNotFound):
				t.Errorf("GetAccessTokenSession(%s of %s) error = %v, want fosite.ErrNotFound", token.signature, token.requestID, err)
			case !token.revoked && err != nil:
				t.Errorf("GetAccessTokenSession(%s of %s) error = %v, want nil", token.signature, token.requestID, err)
			}
		}
	})

	t.Run("second rotation fails", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		if err := store.CreateRefreshTokenSession(ctx, "rt-1", "at-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("CreateRefreshTokenSession: %v", err)
		}
		if err := store.RotateRefreshToken(ctx, "request-1", "rt-1"); err != nil {
			t.Fatalf("first RotateRefreshToken: %v", err)
		}

		err := store.RotateRefreshToken(ctx, "request-1", "rt-1")
		if !errors.Is(err, fosite.ErrSerializationFailure) {
			t.Errorf("second RotateRefreshToken error = %v, want fosite.ErrSerializationFailure", err)
		}
	})

	t.Run("exactly one concurrent rotation wins", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		if err := store.CreateRefreshTokenSession(ctx, "rt-1", "at-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("CreateRefreshTokenSession: %v", err)
		}

		const attempts = 20
		errs := make([]error, attempts)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				<-start
				errs[i] = rotateInTransaction(ctx, store, "request-1", "rt-1")
			})
		}
		close(start)
		wg.Wait()

		successes := 0
		for i, err := range errs {
			switch {
			case err == nil:
				successes++
			case !errors.Is(err, fosite.ErrSerializationFailure):
				t.Errorf("rotation %d error = %v, want nil or fosite.ErrSerializationFailure", i, err)
			}
		}
		if successes != 1 {
			t.Errorf("%d of %d concurrent rotations succeeded, want exactly 1", successes, attempts)
		}
		if _, err := store.GetRefreshTokenSession(ctx, "rt-1", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrInactiveToken) {
			t.Errorf("GetRefreshTokenSession after rotations error = %v, want fosite.ErrInactiveToken", err)
		}
	})

	t.Run("revocation deactivates every token of the grant", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		tokens := []struct {
			signature, requestID string
			revoked              bool
		}{
			{"rt-1", "request-1", true},
			{"rt-2", "request-1", true},
			{"rt-3", "request-2", false},
		}
		for _, token := range tokens {
			if err := store.CreateRefreshTokenSession(ctx, token.signature, "at-of-"+token.signature, newTestRequest(client, token.requestID)); err != nil {
				t.Fatalf("CreateRefreshTokenSession(%s): %v", token.signature, err)
			}
		}

		if err := store.RevokeRefreshToken(ctx, "request-1"); err != nil {
			t.Fatalf("RevokeRefreshToken: %v", err)
		}

		for _, token := range tokens {
			_, err := store.GetRefreshTokenSession(ctx, token.signature, &openid.DefaultSession{})
			switch {
			case token.revoked && !errors.Is(err, fosite.ErrInactiveToken):
				t.Errorf("GetRefreshTokenSession(%s of %s) error = %v, want fosite.ErrInactiveToken", token.signature, token.requestID, err)
			case !token.revoked && err != nil:
				t.Errorf("GetRefreshTokenSession(%s of %s) error = %v, want nil", token.signature, token.requestID, err)
			}
		}
	})
}

// rotateInTransaction rotates a refresh token inside its own transaction and
// rolls back on error, as fosite's refresh handler does.
func rotateInTransaction(ctx context.Context, store *storage.Store, requestID, signature string) error {
	txCtx, err := store.BeginTX(ctx)
	if err != nil {
		return err
	}
	if err := store.RotateRefreshToken(txCtx, requestID, signature); err != nil {
		return errors.Join(err, store.Rollback(txCtx))
	}
	return store.Commit(txCtx)
}

func testPKCEDelete(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	// DeletePKCERequestSession does nothing on purpose. fosite v0.49.0 calls
	// it before it checks code_verifier (handler/pkce/handler.go), so a real
	// delete would let a retry without code_verifier pass after one failed
	// attempt.
	t.Run("delete leaves the record readable", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		client := createClient(t, store, "client-1")
		if err := store.CreatePKCERequestSession(ctx, "code-1", newTestRequest(client, "request-1")); err != nil {
			t.Fatalf("CreatePKCERequestSession: %v", err)
		}

		if err := store.DeletePKCERequestSession(ctx, "code-1"); err != nil {
			t.Fatalf("DeletePKCERequestSession: %v", err)
		}

		got, err := store.GetPKCERequestSession(ctx, "code-1", &openid.DefaultSession{})
		if err != nil {
			t.Fatalf("GetPKCERequestSession after delete error = %v, want nil", err)
		}
		if got.GetID() != "request-1" {
			t.Errorf("request ID = %q, want %q", got.GetID(), "request-1")
		}
	})
}

func testTransactions(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("commit persists writes", func(t *testing.T) {
		store := newStore(t)
		txCtx, err := store.BeginTX(t.Context())
		if err != nil {
			t.Fatalf("BeginTX: %v", err)
		}
		if err := store.CreateUser(txCtx, newTestUser(userID1, "alice")); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}

		if err := store.Commit(txCtx); err != nil {
			t.Fatalf("Commit: %v", err)
		}

		if _, err := store.GetUser(t.Context(), userID1); err != nil {
			t.Errorf("GetUser after commit error = %v, want nil", err)
		}
	})

	t.Run("rollback discards writes", func(t *testing.T) {
		store := newStore(t)
		txCtx, err := store.BeginTX(t.Context())
		if err != nil {
			t.Fatalf("BeginTX: %v", err)
		}
		if err := store.CreateUser(txCtx, newTestUser(userID1, "alice")); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}

		if err := store.Rollback(txCtx); err != nil {
			t.Fatalf("Rollback: %v", err)
		}

		if _, err := store.GetUser(t.Context(), userID1); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetUser after rollback error = %v, want fosite.ErrNotFound", err)
		}
	})

	// A store may cache clients it reads. A client read inside a
	// transaction that is then rolled back must not outlive it.
	t.Run("rolled-back client is not found", func(t *testing.T) {
		store := newStore(t)
		txCtx, err := store.BeginTX(t.Context())
		if err != nil {
			t.Fatalf("BeginTX: %v", err)
		}
		if err := store.CreateClient(txCtx, newTestClient("client-1")); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		if _, err := store.GetClient(txCtx, "client-1"); err != nil {
			t.Fatalf("GetClient inside the transaction: %v", err)
		}

		if err := store.Rollback(txCtx); err != nil {
			t.Fatalf("Rollback: %v", err)
		}

		if _, err := store.GetClient(t.Context(), "client-1"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetClient after rollback error = %v, want fosite.ErrNotFound", err)
		}
	})

	t.Run("uncommitted writes are invisible outside", func(t *testing.T) {
		store := newStore(t)
		txCtx, err := store.BeginTX(t.Context())
		if err != nil {
			t.Fatalf("BeginTX: %v", err)
		}
		t.Cleanup(func() { _ = store.Rollback(txCtx) })
		if err := store.CreateUser(txCtx, newTestUser(userID1, "alice")); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}

		if _, err := store.GetUser(txCtx, userID1); err != nil {
			t.Errorf("GetUser inside the transaction error = %v, want nil", err)
		}
		if _, err := store.GetUser(t.Context(), userID1); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetUser outside the transaction error = %v, want fosite.ErrNotFound", err)
		}
	})

	t.Run("nested begin joins the outer transaction", func(t *testing.T) {
		store := newStore(t)
		client := newTestClient("client-nested")
		outer, err := store.BeginTX(t.Context())
		if err != nil {
			t.Fatalf("outer BeginTX: %v", err)
		}
		t.Cleanup(func() { _ = store.Rollback(outer) })

		inner, err := store.BeginTX(outer)
		if err != nil {
			t.Fatalf("inner BeginTX: %v", err)
		}
		if err := store.CreateClient(inner, client); err != nil {
			t.Fatalf("CreateClient in the inner context: %v", err)
		}
		if _, err := store.GetClientByID(outer, client.ID); err != nil {
			t.Errorf("write through the inner context is not visible in the outer transaction: %v", err)
		}
	})

	// The BeginTX doc comment promises that an outer transaction spans the
	// inner ones that fosite opens and commits. So only the outer Commit or
	// Rollback may end it.
	t.Run("inner commit leaves outer transaction open", func(t *testing.T) {
		store := newStore(t)
		outer, err := store.BeginTX(t.Context())
		if err != nil {
			t.Fatalf("outer BeginTX: %v", err)
		}
		inner, err := store.BeginTX(outer)
		if err != nil {
			t.Fatalf("inner BeginTX: %v", err)
		}
		if err := store.CreateUser(inner, newTestUser(userID1, "alice")); err != nil {
			t.Fatalf("CreateUser inside the inner transaction: %v", err)
		}
		if err := store.Commit(inner); err != nil {
			t.Fatalf("inner Commit: %v", err)
		}

		if err := store.CreateUser(outer, newTestUser(userID2, "bob")); err != nil {
			t.Errorf("CreateUser after the inner commit error = %v, want nil", err)
		}
		if err := store.Rollback(outer); err != nil {
			t.Errorf("outer Rollback error = %v, want nil", err)
		}
		if _, err := store.GetUser(t.Context(), userID1); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetUser(written before the inner commit) after outer rollback error = %v, want fosite.ErrNotFound", err)
		}
	})
}

func testUsers(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("user round-trips", func(t *testing.T) {
		store := newStore(t)
		want := createUser(t, store, userID1, " Alice ")

		got, err := store.GetUser(t.Context(), userID1)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}

		fields := []struct {
			name      string
			got, want any
		}{
			{"ID", got.ID, userID1},
			{"Username", got.Username, "alice"},
			{"Email", got.Email, want.Email},
			{"EmailVerified", got.EmailVerified, want.EmailVerified},
			{"PasswordHash", got.PasswordHash, want.PasswordHash},
			{"Name", got.Name, want.Name},
			{"GivenName", got.GivenName, want.GivenName},
			{"FamilyName", got.FamilyName, want.FamilyName},
		}
		for _, field := range fields {
			if field.got != field.want {
				t.Errorf("user %s = %#v, want %#v", field.name, field.got, field.want)
			}
		}
		if !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("user CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
		}
	})

	t.Run("unknown user is not found", func(t *testing.T) {
		store := newStore(t)

		if _, err := store.GetUser(t.Context(), userID1); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetUser error = %v, want fosite.ErrNotFound", err)
		}
		if _, err := store.GetUserByUsername(t.Context(), "alice"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("GetUserByUsername error = %v, want fosite.ErrNotFound", err)
		}
	})

	t.Run("username lookup ignores case", func(t *testing.T) {
		store := newStore(t)
		createUser(t, store, userID1, "Alice")

		for _, username := range []string{"alice", "ALICE", "aLiCe", " Alice "} {
			got, err := store.GetUserByUsername(t.Context(), username)
			if err != nil {
				t.Errorf("GetUserByUsername(%q) error = %v, want nil", username, err)
				continue
			}
			if got.ID != userID1 {
				t.Errorf("GetUserByUsername(%q) ID = %q, want %q", username, got.ID, userID1)
			}
		}
	})

	t.Run("duplicate username is a conflict", func(t *testing.T) {
		store := newStore(t)
		createUser(t, store, userID1, "alice")

		err := store.CreateUser(t.Context(), newTestUser(userID2, "ALICE"))
		if !errors.Is(err, storage.ErrConflict) {
			t.Errorf("CreateUser(ALICE) error = %v, want storage.ErrConflict", err)
		}
	})

	t.Run("password hash is replaced", func(t *testing.T) {
		store := newStore(t)
		createUser(t, store, userID1, "alice")
		createUser(t, store, userID2, "bob")
		const newHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3c2FsdA$bmV3aGFzaA"

		if err := store.SetPasswordHash(t.Context(), userID1, newHash); err != nil {
			t.Fatalf("SetPasswordHash: %v", err)
		}

		got, err := store.GetUser(t.Context(), userID1)
		if err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if got.PasswordHash != newHash {
			t.Errorf("PasswordHash = %q, want %q", got.PasswordHash, newHash)
		}
		other, err := store.GetUser(t.Context(), userID2)
		if err != nil {
			t.Fatalf("GetUser(other user): %v", err)
		}
		if other.PasswordHash == newHash {
			t.Errorf("other user's PasswordHash = %q, want it unchanged", other.PasswordHash)
		}
	})

	t.Run("password of unknown user is not found", func(t *testing.T) {
		store := newStore(t)

		err := store.SetPasswordHash(t.Context(), userID1, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
		if !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("SetPasswordHash error = %v, want fosite.ErrNotFound", err)
		}
	})
}

func testConsents(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	t.Run("consent is replaced", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		createUser(t, store, userID1, "alice")
		createClient(t, store, "client-1")
		base := time.Now().UTC().Truncate(time.Second)
		first := &storage.Consent{UserID: userID1, ClientID: "client-1", Scopes: []string{"openid"}, GrantedAt: base.Add(-time.Hour)}
		second := &storage.Consent{UserID: userID1, ClientID: "client-1", Scopes: []string{"openid", "email"}, GrantedAt: base}
		if err := store.SaveConsent(ctx, first); err != nil {
			t.Fatalf("first SaveConsent: %v", err)
		}

		if err := store.SaveConsent(ctx, second); err != nil {
			t.Fatalf("second SaveConsent: %v", err)
		}

		got, err := store.GetConsent(ctx, userID1, "client-1")
		if err != nil {
			t.Fatalf("GetConsent: %v", err)
		}
		if !slices.Equal(got.Scopes, second.Scopes) {
			t.Errorf("consent scopes = %q, want %q", got.Scopes, second.Scopes)
		}
		if !got.GrantedAt.Equal(second.GrantedAt) {
			t.Errorf("consent GrantedAt = %v, want %v", got.GrantedAt, second.GrantedAt)
		}
	})

	// Two submissions of one consent form can arrive at once, and both must
	// succeed. A lost race shows only under some interleavings, so the test
	// repeats the burst.
	t.Run("concurrent saves all succeed", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		createUser(t, store, userID1, "alice")
		createClient(t, store, "client-1")

		const rounds, attempts = 10, 20
		var failed []error
		for range rounds {
			errs := make([]error, attempts)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range errs {
				wg.Go(func() {
					<-start
					consent := &storage.Consent{UserID: userID1, ClientID: "client-1", Scopes: []string{"openid"}, GrantedAt: time.Now()}
					errs[i] = store.SaveConsent(ctx, consent)
				})
			}
			close(start)
			wg.Wait()

			for _, err := range errs {
				if err != nil {
					failed = append(failed, err)
				}
			}
		}
		if len(failed) > 0 {
			t.Errorf("%d of %d concurrent SaveConsent calls failed, want none. First error: %v", len(failed), rounds*attempts, failed[0])
		}
		if _, err := store.GetConsent(ctx, userID1, "client-1"); err != nil {
			t.Errorf("GetConsent after concurrent saves error = %v, want nil", err)
		}
	})

	t.Run("missing consent is not found", func(t *testing.T) {
		store := newStore(t)
		ctx := t.Context()
		createUser(t, store, userID1, "alice")
		createUser(t, store, userID2, "bob")
		createClient(t, store, "client-1")
		createClient(t, store, "client-2")
		consent := &storage.Consent{UserID: userID1, ClientID: "client-1", Scopes: []string{"openid"}, GrantedAt: time.Now()}
		if err := store.SaveConsent(ctx, consent); err != nil {
			t.Fatalf("SaveConsent: %v", err)
		}

		for _, pair := range [][2]string{{userID1, "client-2"}, {userID2, "client-1"}} {
			if _, err := store.GetConsent(ctx, pair[0], pair[1]); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("GetConsent(%s, %s) error = %v, want fosite.ErrNotFound", pair[0], pair[1], err)
			}
		}
	})
}

func testSigningKeys(t *testing.T, newStore func(t *testing.T) *storage.Store) {
	// addKeys adds an RS256 key, an ES256 key and a second RS256 key, an
	// hour apart, and returns the retired RS256 key's publish_until.
	addKeys := func(t *testing.T, store *storage.Store, now time.Time) time.Time {
		t.Helper()
		retireUntil := now.Add(24 * time.Hour)
		keys := []*storage.SigningKey{
			{KID: "rsa-1", Algorithm: "RS256", CreatedAt: now.Add(-2 * time.Hour)},
			{KID: "ec-1", Algorithm: "ES256", CreatedAt: now.Add(-time.Hour)},
			{KID: "rsa-2", Algorithm: "RS256", CreatedAt: now},
		}
		for _, key := range keys {
			key.PublicJWK = []byte(`{"kid":"` + key.KID + `"}`)
			key.PrivateKeySealed = []byte("sealed-" + key.KID)
			if err := store.AddSigningKey(t.Context(), key, retireUntil); err != nil {
				t.Fatalf("AddSigningKey(%s): %v", key.KID, err)
			}
		}
		return retireUntil
	}

	t.Run("new key retires the previous one", func(t *testing.T) {
		store := newStore(t)
		now := time.Now().UTC().Truncate(time.Second)
		retireUntil := addKeys(t, store, now)

		keys, err := store.PublishedSigningKeys(t.Context(), now)
		if err != nil {
			t.Fatalf("PublishedSigningKeys: %v", err)
		}
		want := []string{"rsa-2", "ec-1", "rsa-1"}
		if got := signingKeyIDs(keys); !slices.Equal(got, want) {
			t.Fatalf("published key IDs = %q, want %q", got, want)
		}

		cases := []struct {
			key          *storage.SigningKey
			active       bool
			publishUntil *time.Time
		}{
			{keys[0], true, nil},
			{keys[1], true, nil},
			{keys[2], false, &retireUntil},
		}
		for _, c := range cases {
			if c.key.Active != c.active {
				t.Errorf("key %s Active = %t, want %t", c.key.KID, c.key.Active, c.active)
			}
			switch {
			case c.publishUntil == nil && c.key.PublishUntil != nil:
				t.Errorf("key %s PublishUntil = %v, want nil", c.key.KID, *c.key.PublishUntil)
			case c.publishUntil != nil && c.key.PublishUntil == nil:
				t.Errorf("key %s PublishUntil = nil, want %v", c.key.KID, *c.publishUntil)
			case c.publishUntil != nil && !c.key.PublishUntil.Equal(*c.publishUntil):
				t.Errorf("key %s PublishUntil = %v, want %v", c.key.KID, *c.key.PublishUntil, *c.publishUntil)
			}
		}
	})

	t.Run("key material round-trips", func(t *testing.T) {
		store := newStore(t)
		now := time.Now().UTC().Truncate(time.Second)
		addKeys(t, store, now)

		keys, err := store.PublishedSigningKeys(t.Context(), now)
		if err != nil {
			t.Fatalf("PublishedSigningKeys: %v", err)
		}
		for _, key := range keys {
			if want := `{"kid":"` + key.KID + `"}`; string(key.PublicJWK) != want {
				t.Errorf("key %s PublicJWK = %s, want %s", key.KID, key.PublicJWK, want)
			}
			if want := "sealed-" + key.KID; string(key.PrivateKeySealed) != want {
				t.Errorf("key %s PrivateKeySealed = %q, want %q", key.KID, key.PrivateKeySealed, want)
			}
		}
	})

	t.Run("retired key leaves after its window", func(t *testing.T) {
		store := newStore(t)
		now := time.Now().UTC().Truncate(time.Second)
		retireUntil := addKeys(t, store, now)

		keys, err := store.PublishedSigningKeys(t.Context(), retireUntil.Add(time.Second))
		if err != nil {
			t.Fatalf("PublishedSigningKeys: %v", err)
		}
		want := []string{"rsa-2", "ec-1"}
		if got := signingKeyIDs(keys); !slices.Equal(got, want) {
			t.Errorf("published key IDs = %q, want %q", got, want)
		}
	})
}

func signingKeyIDs(keys []*storage.SigningKey) []string {
	ids := make([]string, 0, len(keys))
	for _, key := range keys {
		ids = append(ids, key.KID)
	}
	return ids
}

// loginSessionStore is the behaviour that runSessionStoreContract checks.
// Every login session backend implements it.
type loginSessionStore interface {
	Create(ctx context.Context, session *storage.LoginSession) error
	Get(ctx context.Context, id string) (*storage.LoginSession, error)
	Touch(ctx context.Context, id string) error
	ListByUser(ctx context.Context, userID string) ([]*storage.LoginSession, error)
	Delete(ctx context.Context, id string) error
	DeleteByUser(ctx context.Context, userID string) error
	AddClient(ctx context.Context, id, clientID string) error
	Stats(ctx context.Context) (*storage.SessionStats, error)
}

// newLoginSession returns a session of userID created age ago that lives
// for another hour and has no idle timeout.
func newLoginSession(id, userID string, age time.Duration) *storage.LoginSession {
	created := time.Now().UTC().Add(-age)
	return &storage.LoginSession{
		ID:         id,
		UserID:     userID,
		AuthTime:   created.Truncate(time.Second),
		AMR:        []string{"pwd"},
		CreatedAt:  created,
		LastSeenAt: created,
		ExpiresAt:  time.Now().UTC().Add(time.Hour),
		UserAgent:  "Mozilla/5.0",
		RemoteAddr: "192.0.2.10",
	}
}

func createLoginSessions(t *testing.T, store loginSessionStore, sessions ...*storage.LoginSession) {
	t.Helper()
	for _, session := range sessions {
		if err := store.Create(t.Context(), session); err != nil {
			t.Fatalf("Create(%s): %v", session.ID, err)
		}
	}
}

// runSessionStoreContract checks the behaviour every login session backend
// must share. newStore returns an empty store that belongs to t alone.
func runSessionStoreContract(t *testing.T, newStore func(t *testing.T) loginSessionStore) {
	t.Run("session round-trips", func(t *testing.T) {
		store := newStore(t)
		want := newLoginSession("session-1", "user-1", time.Minute)
		want.IdleTimeout = 30 * time.Minute
		createLoginSessions(t, store, want)

		got, err := store.Get(t.Context(), "session-1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}

		fields := []struct {
			name      string
			got, want any
		}{
			{"ID", got.ID, want.ID},
			{"UserID", got.UserID, want.UserID},
			{"AMR", got.AMR, want.AMR},
			{"IdleTimeout", got.IdleTimeout, want.IdleTimeout},
			{"UserAgent", got.UserAgent, want.UserAgent},
			{"RemoteAddr", got.RemoteAddr, want.RemoteAddr},
		}
		for _, field := range fields {
			if !reflect.DeepEqual(field.got, field.want) {
				t.Errorf("session %s = %#v, want %#v", field.name, field.got, field.want)
			}
		}
		times := []struct {
			name      string
			got, want time.Time
		}{
			{"AuthTime", got.AuthTime, want.AuthTime},
			{"CreatedAt", got.CreatedAt, want.CreatedAt},
			{"LastSeenAt", got.LastSeenAt, want.LastSeenAt},
			{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		}
		for _, field := range times {
			if !field.got.Equal(field.want) {
				t.Errorf("session %s = %v, want %v", field.name, field.got, field.want)
			}
		}
	})

	t.Run("stored session is a copy", func(t *testing.T) {
		store := newStore(t)
		session := newLoginSession("session-1", "user-1", time.Minute)
		createLoginSessions(t, store, session)

		session.UserID = "changed-after-create"
		session.AMR[0] = "changed-after-create"
		got, err := store.Get(t.Context(), "session-1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got.AMR[0] = "changed-after-get"
		again, err := store.Get(t.Context(), "session-1")
		if err != nil {
			t.Fatalf("second Get: %v", err)
		}

		if again.UserID != "user-1" {
			t.Errorf("UserID = %q, want %q", again.UserID, "user-1")
		}
		if want := []string{"pwd"}; !slices.Equal(again.AMR, want) {
			t.Errorf("AMR = %q, want %q", again.AMR, want)
		}
	})

	t.Run("unknown session is not found", func(t *testing.T) {
		store := newStore(t)
		createLoginSessions(t, store, newLoginSession("session-1", "user-1", time.Minute))

		if _, err := store.Get(t.Context(), "session-2"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("Get error = %v, want fosite.ErrNotFound", err)
		}
		if err := store.Touch(t.Context(), "session-2"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("Touch error = %v, want fosite.ErrNotFound", err)
		}
	})

	t.Run("touch records activity", func(t *testing.T) {
		store := newStore(t)
		session := newLoginSession("session-1", "user-1", time.Hour)
		session.IdleTimeout = 2 * time.Hour
		createLoginSessions(t, store, session)

		if err := store.Touch(t.Context(), "session-1"); err != nil {
			t.Fatalf("Touch: %v", err)
		}

		got, err := store.Get(t.Context(), "session-1")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !got.LastSeenAt.After(session.LastSeenAt) {
			t.Errorf("LastSeenAt = %v, want after %v", got.LastSeenAt, session.LastSeenAt)
		}
		if !got.ExpiresAt.Equal(session.ExpiresAt) {
			t.Errorf("ExpiresAt = %v, want it unchanged at %v", got.ExpiresAt, session.ExpiresAt)
		}
	})

	t.Run("sessions are listed newest first", func(t *testing.T) {
		store := newStore(t)
		createLoginSessions(t, store,
			newLoginSession("session-old", "user-1", 2*time.Minute),
			newLoginSession("session-new", "user-1", time.Minute),
			newLoginSession("session-other", "user-2", 30*time.Second),
		)

		sessions, err := store.ListByUser(t.Context(), "user-1")
		if err != nil {
			t.Fatalf("ListByUser: %v", err)
		}
		want := []string{"session-new", "session-old"}
		if got := loginSessionIDs(sessions); !slices.Equal(got, want) {
			t.Errorf("ListByUser IDs = %q, want %q", got, want)
		}
	})

	t.Run("deleted session is not found", func(t *testing.T) {
		store := newStore(t)
		createLoginSessions(t, store,
			newLoginSession("session-1", "user-1", time.Minute),
			newLoginSession("session-2", "user-1", time.Minute),
		)

		if err := store.Delete(t.Context(), "session-1"); err != nil {
			t.Fatalf("Delete: %v", err)
		}

		if _, err := store.Get(t.Context(), "session-1"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("Get(deleted) error = %v, want fosite.ErrNotFound", err)
		}
		if _, err := store.Get(t.Context(), "session-2"); err != nil {
			t.Errorf("Get(other session) error = %v, want nil", err)
		}
		if err := store.Delete(t.Context(), "session-1"); err != nil {
			t.Errorf("second Delete error = %v, want nil", err)
		}
	})

	t.Run("deleting by user spares others", func(t *testing.T) {
		store := newStore(t)
		createLoginSessions(t, store,
			newLoginSession("session-1", "user-1", time.Minute),
			newLoginSession("session-2", "user-1", time.Minute),
			newLoginSession("session-3", "user-2", time.Minute),
		)

		if err := store.DeleteByUser(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteByUser: %v", err)
		}

		for _, id := range []string{"session-1", "session-2"} {
			if _, err := store.Get(t.Context(), id); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("Get(%s of deleted user) error = %v, want fosite.ErrNotFound", id, err)
			}
		}
		if _, err := store.Get(t.Context(), "session-3"); err != nil {
			t.Errorf("Get(session-3 of other user) error = %v, want nil", err)
		}
		sessions, err := store.ListByUser(t.Context(), "user-1")
		if err != nil {
			t.Fatalf("ListByUser: %v", err)
		}
		if len(sessions) != 0 {
			t.Errorf("ListByUser IDs = %q, want none", loginSessionIDs(sessions))
		}
	})

	lapsed := []struct {
		name   string
		adjust func(session *storage.LoginSession)
	}{
		{"expired session is not returned", func(session *storage.LoginSession) {
			session.ExpiresAt = time.Now().UTC().Add(-time.Second)
		}},
		{"idle session is not returned", func(session *storage.LoginSession) {
			session.LastSeenAt = time.Now().UTC().Add(-2 * time.Minute)
			session.IdleTimeout = time.Minute
		}},
	}
	for _, c := range lapsed {
		t.Run(c.name, func(t *testing.T) {
			store := newStore(t)
			session := newLoginSession("session-1", "user-1", 5*time.Minute)
			c.adjust(session)
			if err := store.Create(t.Context(), session); err != nil {
				t.Logf("Create of a lapsed session returned %v, which a store may do", err)
			}

			if _, err := store.Get(t.Context(), "session-1"); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("Get error = %v, want fosite.ErrNotFound", err)
			}
			if err := store.Touch(t.Context(), "session-1"); !errors.Is(err, fosite.ErrNotFound) {
				t.Errorf("Touch error = %v, want fosite.ErrNotFound", err)
			}
			sessions, err := store.ListByUser(t.Context(), "user-1")
			if err != nil {
				t.Fatalf("ListByUser: %v", err)
			}
			if len(sessions) != 0 {
				t.Errorf("ListByUser IDs = %q, want none", loginSessionIDs(sessions))
			}
		})
	}

	// The two subtests below let real time pass, because a backend may keep
	// its own clock. Each sleeps a step, calls Touch and sleeps another step,
	// against a limit of 600 ms. A check that expects the session alive runs
	// at least 250 ms before its limit, and one that expects it gone runs at
	// least 100 ms after.
	const (
		step  = 350 * time.Millisecond
		limit = 600 * time.Millisecond
	)

	t.Run("touch extends idle timeout", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		touched := newLoginSession("session-touched", "user-1", 0)
		touched.IdleTimeout = limit
		untouched := newLoginSession("session-untouched", "user-1", 0)
		untouched.IdleTimeout = limit
		createLoginSessions(t, store, touched, untouched)

		time.Sleep(step)
		if err := store.Touch(t.Context(), "session-touched"); err != nil {
			t.Fatalf("Touch within the idle timeout: %v", err)
		}
		time.Sleep(step)

		if _, err := store.Get(t.Context(), "session-touched"); err != nil {
			t.Errorf("Get(touched) error = %v, want nil", err)
		}
		if _, err := store.Get(t.Context(), "session-untouched"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("Get(untouched) error = %v, want fosite.ErrNotFound", err)
		}
	})

	t.Run("touch keeps absolute expiry", func(t *testing.T) {
		t.Parallel()
		store := newStore(t)
		session := newLoginSession("session-1", "user-1", 0)
		session.ExpiresAt = time.Now().UTC().Add(limit)
		createLoginSessions(t, store, session)

		time.Sleep(step)
		if err := store.Touch(t.Context(), "session-1"); err != nil {
			t.Fatalf("Touch before expiry: %v", err)
		}
		time.Sleep(step)

		if _, err := store.Get(t.Context(), "session-1"); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("Get after expiry error = %v, want fosite.ErrNotFound", err)
		}
	})
}

func loginSessionIDs(sessions []*storage.LoginSession) []string {
	ids := make([]string, 0, len(sessions))
	for _, session := range sessions {
		ids = append(ids, session.ID)
	}
	return ids
}
