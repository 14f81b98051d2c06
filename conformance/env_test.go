package conformance

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// testProvider is an in-process Latchkey served over TLS on 127.0.0.1, with
// open dynamic registration and one test user, built as the provider's own
// tests build it.
type testProvider struct {
	issuer   string
	server   *httptest.Server
	store    *storage.Store
	keys     *provider.KeySet
	secret   []byte
	username string
	password string
}

// swappableHandler lets the server start, and so know its URL, before the
// provider that needs the URL as its issuer exists.
type swappableHandler struct{ handler atomic.Pointer[http.Handler] }

func (s *swappableHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.handler.Load()).ServeHTTP(w, r)
}

// newTestProvider starts Latchkey. wrap, unless nil, wraps its handler, as
// the tests that break one rule on purpose do.
func newTestProvider(t testing.TB, wrap func(issuer string, next http.Handler) http.Handler) *testProvider {
	t.Helper()
	return newTestProviderWith(t, providerSetup{wrap: wrap})
}

// providerSetup changes the test provider.
type providerSetup struct {
	// wrap wraps the provider's handler.
	wrap func(issuer string, next http.Handler) http.Handler
	// backchannel wraps the transport that sends back-channel logout
	// tokens.
	backchannel func(http.RoundTripper) http.RoundTripper
}

func newTestProviderWith(t testing.TB, setup providerSetup) *testProvider {
	t.Helper()
	wrap := setup.wrap
	ctx := context.Background()
	databaseURL := storagetest.DatabaseURL(t)
	db, err := storage.Open(ctx, databaseURL)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	store := storage.NewStore(db)
	sessions := storagetest.NewSessionStore(t)

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys, err := provider.NewKeySet(store, secret)
	if err != nil {
		t.Fatal(err)
	}
	keys.SetActivationDelay(0)
	if _, err := keys.EnsureActive(ctx, time.Hour, provider.AlgRS256, provider.AlgES256); err != nil {
		t.Fatalf("create keys: %v", err)
	}

	swap := &swappableHandler{}
	server := httptest.NewUnstartedServer(swap)
	server.StartTLS()
	t.Cleanup(server.Close)
	issuer := server.URL

	notifierConfig := backchannel.Config{Issuer: issuer, Signer: keys, Logger: testsupport.Logger()}
	if setup.backchannel != nil {
		notifierConfig.HTTPClient = &http.Client{Transport: setup.backchannel(http.DefaultTransport), Timeout: 10 * time.Second}
	}
	notifier, err := backchannel.New(notifierConfig)
	if err != nil {
		t.Fatal(err)
	}
	notifierCtx, stopNotifier := context.WithCancel(ctx)
	t.Cleanup(stopNotifier)
	notifier.Start(notifierCtx)

	p, err := provider.New(provider.Config{
		Issuer:       issuer,
		SystemSecret: secret,
		Logger:       testsupport.Logger(),
		Registration: provider.RegistrationOpen,
		SessionEnder: logout.NewEnder(sessions, store, notifier, testsupport.Logger()),
		// The harness serves its jwks_uri and request_uri on 127.0.0.1.
		AllowPrivateFetches: true,
	}, store, sessions, keys)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}
	handler := p.Handler()
	if wrap != nil {
		handler = wrap(issuer, handler)
	}
	swap.handler.Store(&handler)

	username, password := "conformance", rand.Text()
	user := &storage.User{
		ID: uuid.NewString(), Username: username, PasswordHash: provider.HashPassword(password),
		Email: "conformance@example.com", EmailVerified: true,
		Name: "Conformance Tester", GivenName: "Conformance", FamilyName: "Tester", MiddleName: "Q",
		Nickname: "tester", PreferredUsername: "conformance", Profile: "https://example.com/tester",
		Picture: "https://example.com/tester.png", Website: "https://example.com", Gender: "other",
		Birthdate: "1990-01-02", Zoneinfo: "Europe/Stockholm", Locale: "sv-SE",
		PhoneNumber: "+46 8 123 456 78", PhoneNumberVerified: true,
		Address: storage.Address{Formatted: "1 Main St, Springfield", StreetAddress: "1 Main St", Locality: "Springfield",
			Region: "Oregon", PostalCode: "97477", Country: "US"},
	}
	if err := store.CreateUser(ctx, user); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return &testProvider{issuer: issuer, server: server, store: store, keys: keys, secret: secret, username: username, password: password}
}

// options returns harness options for the provider, with the waits and
// the redirect wait shortened unless full is set.
func (p *testProvider) options(t testing.TB, full bool, plans ...string) Options {
	t.Helper()
	opts := Options{
		Issuer:                         p.issuer,
		Plans:                          plans,
		Username:                       p.username,
		Password:                       p.password,
		HTTPClient:                     p.server.Client(),
		BrowserIgnoreCertificateErrors: true,
		ArtifactsDir:                   t.TempDir(),
		ChromiumPath:                   chromiumForTests(t),
		JWKSRefreshDelay:               time.Second,
		RotateKeys: func(ctx context.Context) error {
			_, err := p.keys.Rotate(ctx, provider.AlgRS256, time.Hour)
			return err
		},
		// The harness's default --host-resolver-rules keep Chromium on
		// 127.0.0.1, the provider's and the callback server's host.
		Logger: testsupport.Logger(),
	}
	if dir := os.Getenv("LATCHKEY_CONFORMANCE_ARTIFACTS"); dir != "" {
		opts.ArtifactsDir = dir
	}
	if !full {
		opts.NoRedirectWait = time.Second
		opts.waits = &waitTimes{promptLogin: time.Second, maxAge1: 2 * time.Second, codeReuse: 2 * time.Second,
			postRequest: 2 * time.Second, beforeRefresh: time.Second}
	}
	return opts
}

// chromiumForTests returns Debian's Chromium, or "" with
// LATCHKEY_SKIP_BROWSER=1, when the browser modules are SKIPPED. Without
// Chromium and without that variable the test fails, as the provider's
// browser tests do.
func chromiumForTests(t testing.TB) string {
	t.Helper()
	if os.Getenv("LATCHKEY_SKIP_BROWSER") == "1" {
		return "/nonexistent/chromium"
	}
	candidates := []string{"/usr/bin/chromium"}
	if fromEnv := os.Getenv("LATCHKEY_CHROMIUM"); fromEnv != "" {
		candidates = append([]string{fromEnv}, candidates...)
	}
	for _, candidate := range candidates {
		if path, err := exec.LookPath(candidate); err == nil {
			return path
		}
	}
	t.Fatalf("Chromium not found: install it with `apt-get install -y chromium`, set LATCHKEY_CHROMIUM, or set LATCHKEY_SKIP_BROWSER=1")
	return ""
}

// run runs opts and fails the test if the run cannot start.
func run(t testing.TB, opts Options) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	report, err := Run(ctx, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return report
}
