package testsupport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/bearer"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// Logger returns a logger that discards records unless the environment
// variable LATCHKEY_TEST_LOG is set, and then writes text to stderr.
func Logger() *slog.Logger {
	if os.Getenv("LATCHKEY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Listen returns a TCP listener on a random port of 127.0.0.1, so that a
// service can learn its URL before its handler exists.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return listener
}

// Serve serves handler over HTTP on listener until the test ends, and
// returns the server.
func Serve(t testing.TB, listener net.Listener, handler http.Handler) *httptest.Server {
	t.Helper()
	server := httptest.NewUnstartedServer(handler)
	server.Listener.Close()
	server.Listener = listener
	server.Start()
	t.Cleanup(server.Close)
	return server
}

// NewVerifier returns an access token verifier for the provider at issuer,
// with the issuer as the audience, that has already fetched the provider's
// keys. sessionCheck may be nil.
func NewVerifier(t testing.TB, issuer string, sessionCheck func(ctx context.Context, sid string) error) *bearer.Verifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	verifier, err := bearer.New(ctx, bearer.Config{
		Issuer: issuer, Audience: issuer, Logger: Logger(), SessionCheck: sessionCheck,
	})
	if err != nil {
		t.Fatalf("new token verifier: %v", err)
	}
	if err := verifier.Refresh(ctx); err != nil {
		t.Fatalf("fetch the provider's keys: %v", err)
	}
	return verifier
}

// SessionAlive returns the session check of `latchkey serve` on sessions.
// A token whose login session has ended is invalid. A failing session store
// makes the check fail with bearer.ErrUnavailable, and the APIs respond
// with 503.
func SessionAlive(sessions storagetest.SessionStore) func(ctx context.Context, sid string) error {
	return func(ctx context.Context, sid string) error {
		_, err := sessions.Get(ctx, sid)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, fosite.ErrNotFound):
			return errors.New("the login session of this token has ended")
		default:
			return fmt.Errorf("%w: %v", bearer.ErrUnavailable, err)
		}
	}
}

// CheckAuditChainAtCleanup registers a cleanup that verifies the hash chain
// of store's audit log and fails the test if it is broken. Cleanups run last
// in, first out, so a test environment calls it after it has registered the
// cleanup that closes the database.
func CheckAuditChainAtCleanup(t testing.TB, store *storage.Store) {
	t.Helper()
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
}
