package sessionapi_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// skipUnlessRedis skips a benchmark on the sqlite backend, because the
// numbers that matter are those of the Redis session store in production.
func skipUnlessRedis(b *testing.B) {
	if storagetest.Backend() != storagetest.Postgres {
		b.Skip("benchmarks the Redis session store: run with LATCHKEY_TEST_BACKEND=postgres")
	}
}

// BenchmarkListSessions measures GET /v1/sessions through the session API's
// handler, without the network, for a user with 50 live sessions in Redis.
// Each session has the same three clients, whose names the store caches.
// The user is read from the database on every request.
func BenchmarkListSessions(b *testing.B) {
	skipUnlessRedis(b)
	env := newTestEnv(b)
	_, password := env.createUser(b, "bea")
	token := env.app.SignIn(b, env.newBrowser(b, chromeOnWindows), "bea", password, personScopes)
	userID, _ := testsupport.JWTPayload(b, token.AccessToken)["sub"].(string)
	third := env.createClient(b, "Third app", "")

	ctx := context.Background()
	now := time.Now()
	const sessionCount = 50
	for i := range sessionCount - 1 {
		session := &storage.LoginSession{
			ID:          rand.Text(),
			UserID:      userID,
			AuthTime:    now.Add(-time.Duration(i) * time.Minute),
			AMR:         []string{"pwd"},
			CreatedAt:   now.Add(-time.Duration(i) * time.Minute),
			LastSeenAt:  now,
			ExpiresAt:   now.Add(24 * time.Hour),
			IdleTimeout: 2 * time.Hour,
			UserAgent:   firefoxOnLinux,
			RemoteAddr:  "127.0.0.1",
			Clients:     []string{env.app.ID, env.other.ID, third.ID},
		}
		if err := env.sessions.Create(ctx, session); err != nil {
			b.Fatalf("create session %d: %v", i, err)
		}
	}

	request := httptest.NewRequest(http.MethodGet, "/v1/sessions", nil)
	request.Header.Set("Authorization", "Bearer "+token.AccessToken)
	listed := serveRecorded(b, env.sessionHandler, request)
	if listed.Code != http.StatusOK {
		b.Fatalf("GET /v1/sessions: status %d: %s", listed.Code, listed.Body)
	}
	var list struct {
		Sessions []sessionBody `json:"sessions"`
	}
	if err := json.Unmarshal(listed.Body.Bytes(), &list); err != nil {
		b.Fatalf("GET /v1/sessions: body is not the expected JSON (%v): %.300s", err, listed.Body)
	}
	if len(list.Sessions) != sessionCount {
		b.Fatalf("GET /v1/sessions lists %d sessions, expected %d", len(list.Sessions), sessionCount)
	}

	b.ReportAllocs()
	for b.Loop() {
		recorder := serveRecorded(b, env.sessionHandler, request)
		if recorder.Code != http.StatusOK {
			b.Fatalf("GET /v1/sessions: status %d: %s", recorder.Code, recorder.Body)
		}
	}
}

func serveRecorded(b *testing.B, handler http.Handler, request *http.Request) *httptest.ResponseRecorder {
	b.Helper()
	recorder := httptest.NewRecorder()
	handler.ServeHTTP(recorder, request)
	return recorder
}

// BenchmarkSessionCheck measures the verification of one access token,
// with the session check that looks its sid up in Redis and without it,
// so that the difference is the check's cost.
func BenchmarkSessionCheck(b *testing.B) {
	skipUnlessRedis(b)
	env := newTestEnv(b)
	_, password := env.createUser(b, "ben")
	token := env.app.SignIn(b, env.newBrowser(b, chromeOnWindows), "ben", password, personScopes)
	ctx := context.Background()

	verifiers := []struct {
		name         string
		sessionCheck func(ctx context.Context, sid string) error
	}{
		{"with_check", testsupport.SessionAlive(env.sessions)},
		{"without_check", nil},
	}
	for _, v := range verifiers {
		verifier := testsupport.NewVerifier(b, env.issuer, v.sessionCheck)
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := verifier.Verify(ctx, token.AccessToken); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
