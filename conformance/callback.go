package conformance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Kinds of the requests the callback server records.
const (
	eventCallback           = "callback"
	eventFragment           = "fragment"
	eventPostLogoutRedirect = "post_logout_redirect"
	eventBackchannelLogout  = "backchannel_logout"
	eventFrontchannelLogout = "frontchannel_logout"
	eventOther              = "other"
)

// fragmentEndpointHeader names, on the callback page, the URL its script
// posts location.hash to, so that the HTTP driver can do the same.
const fragmentEndpointHeader = "X-Conformance-Fragment-Endpoint"

// callbackEvent is a request that reached the callback server.
type callbackEvent struct {
	Kind        string
	Method      string
	Path        string
	ContentType string
	Header      http.Header
	Query       url.Values
	RawQuery    string
	// Form is the parsed body of a form POST.
	Form url.Values
	Body []byte
	// Fragment is the location.hash the callback page posted, without '#'.
	Fragment string
	TLS      *tls.ConnectionState
	At       time.Time
}

// inbox receives the requests for one module and holds what the callback
// server serves for it.
type inbox struct {
	mu       sync.Mutex
	events   []*callbackEvent
	consumed []bool
	changed  chan struct{}

	jwks           []byte
	requestObjects map[string][]byte
	sectorURIs     []byte
	postRequest    []byte
}

func newInbox() *inbox {
	return &inbox{changed: make(chan struct{}), requestObjects: map[string][]byte{}}
}

func (b *inbox) push(e *callbackEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
	b.consumed = append(b.consumed, false)
	close(b.changed)
	b.changed = make(chan struct{})
}

// next waits up to timeout for an event of one of kinds that no earlier
// call returned, and returns it, or nil.
func (b *inbox) next(ctx context.Context, timeout time.Duration, kinds ...string) *callbackEvent {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		b.mu.Lock()
		for i, e := range b.events {
			if b.consumed[i] {
				continue
			}
			for _, kind := range kinds {
				if e.Kind == kind {
					b.consumed[i] = true
					b.mu.Unlock()
					return e
				}
			}
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// since returns the events recorded after the first n.
func (b *inbox) since(n int) []*callbackEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n >= len(b.events) {
		return nil
	}
	return append([]*callbackEvent(nil), b.events[n:]...)
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events)
}

func (b *inbox) setJWKS(data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.jwks = data
}

func (b *inbox) setRequestObject(name string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requestObjects[name] = data
}

func (b *inbox) setSectorURIs(data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sectorURIs = data
}

func (b *inbox) setPostRequest(page []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.postRequest = page
}

func (b *inbox) resource(get func(*inbox) []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return get(b)
}

// callbackServer is the relying party's side of every module: redirect
// URIs, logout endpoints, and the documents the provider fetches (client
// JWKS, request objects, sector identifiers). Each module gets the prefix
// /test/<id>; with static clients the root paths go to the module that runs.
type callbackServer struct {
	server   *http.Server
	listener net.Listener
	origin   string
	// certificate is the self-signed certificate served with CallbackTLS.
	certificate *x509.Certificate
	logger      *slog.Logger

	mu      sync.Mutex
	inboxes map[string]*inbox
	current *inbox
}

func startCallbackServer(listen string, useTLS bool, logger *slog.Logger, maxTLSVersion uint16) (*callbackServer, error) {
	listener, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen for callbacks on %s: %w", listen, err)
	}
	s := &callbackServer{listener: listener, logger: logger, inboxes: map[string]*inbox{}}
	s.server = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if useTLS {
		certificate, cert, err := selfSignedCertificate()
		if err != nil {
			listener.Close()
			return nil, err
		}
		s.certificate = cert
		s.server.TLSConfig = &tls.Config{Certificates: []tls.Certificate{certificate}, MinVersion: tls.VersionTLS12, MaxVersion: maxTLSVersion}
		listener = tls.NewListener(listener, s.server.TLSConfig)
		scheme = "https"
	}
	s.origin = scheme + "://" + s.listener.Addr().String()
	go func() {
		if err := s.server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("callback server stopped", "error", err)
		}
	}()
	return s, nil
}

func (s *callbackServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.server.Shutdown(ctx)
}

// register creates the inbox of module run id and returns it with the base
// URL of its endpoints. With shared set the base is the server's root,
// for static clients, and the inbox receives the root paths until the next
// register call with shared.
func (s *callbackServer) register(id string, shared bool) (*inbox, string) {
	b := newInbox()
	s.mu.Lock()
	defer s.mu.Unlock()
	if shared {
		s.current = b
		return b, s.origin
	}
	s.inboxes[id] = b
	return b, s.origin + "/test/" + id
}

func (s *callbackServer) unregister(id string, b *inbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inboxes, id)
	if s.current == b {
		s.current = nil
	}
}

func (s *callbackServer) route(path string) (*inbox, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rest, ok := strings.CutPrefix(path, "/test/"); ok {
		id, tail, _ := strings.Cut(rest, "/")
		return s.inboxes[id], "/test/" + id, tail
	}
	return s.current, "", strings.TrimPrefix(path, "/")
}

func (s *callbackServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, prefix, tail := s.route(r.URL.Path)
	if tail == "favicon.ico" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	event := &callbackEvent{
		Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Header: r.Header.Clone(),
		Query: r.URL.Query(), RawQuery: r.URL.RawQuery, Body: body, TLS: r.TLS, At: time.Now(),
	}
	if mediaType(r.Header) == "application/x-www-form-urlencoded" {
		event.Form, _ = url.ParseQuery(string(body))
	}
	if b == nil {
		s.logger.Warn("callback for no running module", "method", r.Method, "path", r.URL.Path)
		http.NotFound(w, r)
		return
	}

	switch {
	case tail == "callback" || strings.HasPrefix(tail, "callback/") || tail == "callback_alt":
		event.Kind = eventCallback
		b.push(event)
		s.writeCallbackPage(w, prefix)
	case tail == "implicit-submit":
		event.Kind = eventFragment
		event.Fragment = string(body)
		b.push(event)
		w.WriteHeader(http.StatusNoContent)
	case tail == "post_logout_redirect" || strings.HasPrefix(tail, "post_logout_redirect/") || tail == "bad_post_logout_redirect_uri":
		event.Kind = eventPostLogoutRedirect
		b.push(event)
		writeHTML(w, http.StatusOK, "Logged out", "The test received the post-logout redirect.")
	case tail == "backchannel_logout":
		event.Kind = eventBackchannelLogout
		b.push(event)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	case tail == "frontchannel_logout":
		event.Kind = eventFrontchannelLogout
		b.push(event)
		writeHTML(w, http.StatusOK, "Front-channel logout", "The test received the front-channel logout request.")
	case tail == "jwks":
		serveDocument(w, "application/json", b.resource(func(b *inbox) []byte { return b.jwks }))
	case strings.HasPrefix(tail, "requesturi/"):
		name := strings.TrimPrefix(tail, "requesturi/")
		serveDocument(w, "application/jwt", b.resource(func(b *inbox) []byte { return b.requestObjects[name] }))
	case tail == "sector_identifier":
		serveDocument(w, "application/json", b.resource(func(b *inbox) []byte { return b.sectorURIs }))
	case tail == "post-request":
		serveDocument(w, "text/html; charset=utf-8", b.resource(func(b *inbox) []byte { return b.postRequest }))
	case tail == "images/openid.png":
		serveDocument(w, "image/png", logoPNG)
	case tail == "login.html" || tail == "tos.html":
		writeHTML(w, http.StatusOK, "Conformance test client", "A page of the conformance test client.")
	default:
		event.Kind = eventOther
		b.push(event)
		http.NotFound(w, r)
	}
}

// callbackPage posts location.hash to the harness, as the official suite's
// implicit callback page does, and then marks itself done.
var callbackPage = template.Must(template.New("callback").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Callback</title><link rel="icon" href="data:,"></head>
<body><p id="status">Sending the response to the test&hellip;</p>
<script>
fetch({{.}}, {method: "POST", headers: {"Content-Type": "text/plain"}, body: location.hash.substring(1)})
  .then(function () { document.getElementById("status").textContent = "The test received the response."; document.title = "Callback done"; });
</script></body></html>`))

func (s *callbackServer) writeCallbackPage(w http.ResponseWriter, prefix string) {
	endpoint := prefix + "/implicit-submit"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(fragmentEndpointHeader, endpoint)
	_ = callbackPage.Execute(w, endpoint)
}

var simplePage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title><link rel="icon" href="data:,"></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>`))

func writeHTML(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = simplePage.Execute(w, struct{ Title, Message string }{title, message})
}

func serveDocument(w http.ResponseWriter, contentType string, data []byte) {
	if data == nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(data)
}

// logoPNG is a 1×1 PNG served as the client's logo_uri.
var logoPNG, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

// selfSignedCertificate makes a P-256 certificate for 127.0.0.1 and
// localhost, valid for a day.
func selfSignedCertificate() (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "latchkey conformance callback"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:              []string{"localhost"},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, cert, nil
}
