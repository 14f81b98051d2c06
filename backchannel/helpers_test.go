package backchannel_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/backchannel"
)

const (
	testIssuer = "https://issuer.test"
	rsaKeyID   = "test-rs256"
	ecKeyID    = "test-es256"

	// hangTimeout only turns a hung test into a failure with a message. No
	// test expects to come near it.
	hangTimeout = 30 * time.Second
)

// testKeys are generated once per test binary because RSA generation is
// slow under the race detector.
var testKeys = sync.OnceValue(func() keyPair {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return keyPair{rsa: rsaKey, ec: ecKey}
})

type keyPair struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

// testSigner signs with go-jose and the test keys, as the provider's key
// set would with its active keys.
type testSigner struct {
	keys  keyPair
	err   error // returned by every call when set
	calls atomic.Int64
}

var _ backchannel.Signer = (*testSigner)(nil)

func newTestSigner() *testSigner {
	return &testSigner{keys: testKeys()}
}

func (s *testSigner) SignJWT(ctx context.Context, algorithm string, claims map[string]any, header map[string]any) (string, error) {
	s.calls.Add(1)
	if s.err != nil {
		return "", s.err
	}

	var key any
	var keyID string
	switch algorithm {
	case "RS256":
		key, keyID = s.keys.rsa, rsaKeyID
	case "ES256":
		key, keyID = s.keys.ec, ecKeyID
	default:
		return "", fmt.Errorf("no test key for algorithm %q", algorithm)
	}

	options := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), keyID)
	for name, value := range header {
		options = options.WithHeader(jose.HeaderKey(name), value)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(algorithm), Key: key}, options)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return signed.CompactSerialize()
}

// verifyLogoutToken checks raw's signature against the test key its alg
// names and returns its protected header and its claims, with numbers as
// json.Number so that their exact JSON form can be checked.
func verifyLogoutToken(t *testing.T, raw string) (jose.Header, map[string]any) {
	t.Helper()
	signed, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse logout token: %v", err)
	}
	if len(signed.Signatures) != 1 {
		t.Fatalf("logout token has %d signatures, want 1", len(signed.Signatures))
	}
	header := signed.Signatures[0].Protected

	var public any = &testKeys().rsa.PublicKey
	if header.Algorithm == string(jose.ES256) {
		public = &testKeys().ec.PublicKey
	}
	payload, err := signed.Verify(public)
	if err != nil {
		t.Fatalf("verify logout token signature: %v", err)
	}

	decoder := json.NewDecoder(bytes.NewReader(payload))
	decoder.UseNumber()
	var claims map[string]any
	if err := decoder.Decode(&claims); err != nil {
		t.Fatalf("decode logout token claims: %v", err)
	}
	return header, claims
}

// receivedRequest is one logout request as a receiver saw it.
type receivedRequest struct {
	method       string
	contentType  string
	cacheControl string
	form         map[string][]string
	token        string
}

// Special statuses in a receiver's script.
const (
	closeConnection = -1 // close the connection without a response
	stallUntilGone  = -2 // send no response until the client gives up
)

// receiver is a relying party's backchannel_logout_uri on 127.0.0.1. It
// responds to its nth request with statuses[n], or with the last status
// once the script runs out.
//
// Set its fields before serveReceiver starts it: the server reads them
// without locks.
type receiver struct {
	server   *httptest.Server
	statuses []int
	body     string        // response body for every status
	redirect string        // Location header for every status, when set
	entered  chan struct{} // receives a value per request while there is room
	release  chan struct{} // when set, every request waits for it to close

	releaseOnce sync.Once
	mu          sync.Mutex
	requests    []receivedRequest
}

// newReceiver starts a receiver that responds with statuses.
func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	return serveReceiver(t, &receiver{statuses: statuses})
}

// serveReceiver starts r on 127.0.0.1 until the test ends.
func serveReceiver(t *testing.T, r *receiver) *receiver {
	t.Helper()
	r.server = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(r.server.Close)
	return r
}

// newBlockingReceiver starts a receiver that responds 200 to every request,
// but only once unblock is called. Its entered channel has room for
// capacity values. The test's cleanup unblocks it, so that the server can
// close.
func newBlockingReceiver(t *testing.T, capacity int) *receiver {
	t.Helper()
	r := serveReceiver(t, &receiver{
		statuses: []int{http.StatusOK},
		entered:  make(chan struct{}, capacity),
		release:  make(chan struct{}),
	})
	// Cleanups run last in, first out, so this one runs before the server
	// closes and waits for the blocked requests.
	t.Cleanup(r.unblock)
	return r
}

// unblock lets the requests that wait for r.release, and all later ones,
// get their responses.
func (r *receiver) unblock() {
	r.releaseOnce.Do(func() { close(r.release) })
}

func (r *receiver) url() string { return r.server.URL + "/backchannel-logout" }

func (r *receiver) serveHTTP(w http.ResponseWriter, request *http.Request) {
	if err := request.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	attempt := len(r.requests)
	r.requests = append(r.requests, receivedRequest{
		method:       request.Method,
		contentType:  request.Header.Get("Content-Type"),
		cacheControl: request.Header.Get("Cache-Control"),
		form:         request.PostForm,
		token:        request.PostForm.Get("logout_token"),
	})
	r.mu.Unlock()

	if r.entered != nil {
		select {
		case r.entered <- struct{}{}:
		default:
		}
	}
	if r.release != nil {
		<-r.release
	}

	status := r.statuses[min(attempt, len(r.statuses)-1)]
	switch status {
	case closeConnection:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case stallUntilGone:
		<-request.Context().Done()
	default:
		if r.redirect != "" {
			w.Header().Set("Location", r.redirect)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(r.body))
	}
}

func (r *receiver) received() []receivedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedRequest(nil), r.requests...)
}

func (r *receiver) tokens() []string {
	var tokens []string
	for _, request := range r.received() {
		tokens = append(tokens, request.token)
	}
	return tokens
}

// loggedRecord is one log record, with its attributes as strings.
type loggedRecord struct {
	level   slog.Level
	message string
	attrs   map[string]string
}

// logRecorder is a slog.Handler that keeps every record. It ignores
// WithAttrs and WithGroup, which package backchannel does not use.
type logRecorder struct {
	mu      sync.Mutex
	records []loggedRecord
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, record slog.Record) error {
	attrs := map[string]string{}
	record.Attrs(func(attr slog.Attr) bool {
		attrs[attr.Key] = attr.Value.String()
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, loggedRecord{level: record.Level, message: record.Message, attrs: attrs})
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// withMessage returns the records whose message is message.
func (l *logRecorder) withMessage(message string) []loggedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []loggedRecord
	for _, record := range l.records {
		if record.message == message {
			found = append(found, record)
		}
	}
	return found
}

// atLevel returns the records of exactly level.
func (l *logRecorder) atLevel(level slog.Level) []loggedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []loggedRecord
	for _, record := range l.records {
		if record.level == level {
			found = append(found, record)
		}
	}
	return found
}

// assertNoTokenLogged fails t when any record contains one of tokens.
func (l *logRecorder) assertNoTokenLogged(t *testing.T, tokens []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, record := range l.records {
		text := record.message + fmt.Sprint(record.attrs)
		for _, token := range tokens {
			if token != "" && strings.Contains(text, token) {
				t.Errorf("log record %q contains a logout token", record.message)
			}
		}
	}
}

// newTestNotifier returns a notifier with the test issuer, signer and log
// recorder, a 10 ms Backoff and 3 MaxAttempts, for every field of cfg left
// zero. It does not start the notifier.
func newTestNotifier(t *testing.T, cfg backchannel.Config) (*backchannel.Notifier, *logRecorder) {
	t.Helper()
	logs := &logRecorder{}
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.Signer == nil {
		cfg.Signer = newTestSigner()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(logs)
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 3
	}
	notifier, err := backchannel.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return notifier, logs
}

// startTestNotifier is newTestNotifier followed by Start. The workers stop
// when the test ends.
func startTestNotifier(t *testing.T, cfg backchannel.Config) (*backchannel.Notifier, *logRecorder) {
	t.Helper()
	notifier, logs := newTestNotifier(t, cfg)
	notifier.Start(t.Context())
	return notifier, logs
}

// waitIdle waits until every queued delivery has finished.
func waitIdle(t *testing.T, notifier *backchannel.Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), hangTimeout)
	defer cancel()
	if err := notifier.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// receive waits for one value from ch.
func receive(t *testing.T, ch <-chan struct{}, description string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangTimeout):
		t.Fatalf("gave up waiting for %s", description)
	}
}
