package conformance

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// variant is the official suite's variant of a module: response type,
// response mode and client authentication.
type variant struct {
	ResponseType string
	// ResponseMode is "" for the response type's default, or "form_post".
	ResponseMode string
	ClientAuth   string
}

func (v variant) String() string {
	s := v.ResponseType
	if v.ResponseMode != "" {
		s += " " + v.ResponseMode
	}
	return s
}

func (v variant) hasCode() bool    { return hasWord(v.ResponseType, "code") }
func (v variant) hasIDToken() bool { return hasWord(v.ResponseType, "id_token") }
func (v variant) hasToken() bool   { return hasWord(v.ResponseType, "token") }

// codeFlow reports whether the response arrives in the query: response
// type code with the default response mode.
func (v variant) codeFlow() bool { return v.ResponseType == "code" && v.ResponseMode == "" }

func hasWord(s, word string) bool {
	for _, w := range strings.Fields(s) {
		if w == word {
			return true
		}
	}
	return false
}

// httpResult is a response of the provider with its body read.
type httpResult struct {
	Method string
	URL    string
	Status int
	Header http.Header
	Body   []byte
	Err    error
	TLS    *tls.ConnectionState
}

// moduleStop is the panic value that ends a module after a Fatal finding
// or a skip. run recovers it.
type moduleStop struct{}

// moduleRun is one module running in one plan and variant.
type moduleRun struct {
	ctx     context.Context
	h       *harness
	plan    string
	variant variant
	spec    *moduleSpec
	id      string
	inbox   *inbox
	// base is the callback server's URL prefix of this module.
	base  string
	agent userAgent

	config  *serverConfig
	keys    []jose.JSONWebKey
	clients []*client

	mu           sync.Mutex
	findings     []Finding
	extras       []Finding
	skipReason   string
	screenshots  []string
	reviewReason string
}

func (m *moduleRun) record(f Finding) {
	m.mu.Lock()
	if f.Severity == Extra {
		m.extras = append(m.extras, f)
	} else {
		m.findings = append(m.findings, f)
	}
	m.mu.Unlock()
	if f.Severity == Fatal {
		panic(moduleStop{})
	}
}

// skip ends the module as SKIPPED, unless it has already failed.
func (m *moduleRun) skip(format string, args ...any) {
	m.mu.Lock()
	m.skipReason = fmt.Sprintf(format, args...)
	m.mu.Unlock()
	panic(moduleStop{})
}

func (m *moduleRun) now() time.Time { return time.Now() }

// sleep waits for d unless the run is cancelled, which stops the module.
func (m *moduleRun) sleep(d time.Duration) {
	select {
	case <-time.After(d):
	case <-m.ctx.Done():
		m.skip("the run was cancelled")
	}
}

// get sends a GET to the provider.
func (m *moduleRun) get(rawURL string, header http.Header) *httpResult {
	req, err := http.NewRequestWithContext(m.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return &httpResult{Method: http.MethodGet, URL: rawURL, Err: err}
	}
	for name, values := range header {
		req.Header[name] = values
	}
	return m.h.send(req)
}

// send sends req with the provider's HTTP client and reads the response.
func (h *harness) send(req *http.Request) *httpResult {
	result := &httpResult{Method: req.Method, URL: req.URL.String()}
	resp, err := h.http.Do(req)
	if err != nil {
		result.Err = err
		return result
	}
	defer resp.Body.Close()
	result.Status, result.Header, result.TLS = resp.StatusCode, resp.Header, resp.TLS
	result.Body, result.Err = io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return result
}

// setup fetches and checks discovery and the JWK set, as every flow module
// does before it starts.
func (m *moduleRun) setup() {
	m.loadServerConfig()
	m.loadServerKeys(Warning)
	if _, ok := m.config.Raw["userinfo_endpoint"].(string); !ok {
		report(m, checkUserinfoEndpointPresent, Fatal, "discovery has no userinfo_endpoint")
	}
}

func (m *moduleRun) discoveryURL() string { return m.h.opts.Issuer + discoveryPath }

func (m *moduleRun) loadServerConfig() {
	m.config = parseServerConfig(m, m.get(m.discoveryURL(), http.Header{"Accept": {"application/json"}}))
}

func (m *moduleRun) loadServerKeys(keysValid Severity) {
	jwksURI, _ := m.config.Raw["jwks_uri"].(string)
	if jwksURI == "" {
		report(m, checkFetchServerKeys, Fatal, "discovery has no jwks_uri")
	}
	m.keys = parseServerJWKS(m, m.get(jwksURI, http.Header{"Accept": {"application/json"}}), keysValid)
}

// requireBrowser skips the module when Chromium is not available.
func (m *moduleRun) requireBrowser(why string) {
	if _, isBrowser := m.agent.(*browserAgent); !isBrowser {
		m.skip("%s needs Chromium: %s", why, m.h.browserUnavailable)
	}
}

var unsafeFileCharacters = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// screenshot saves a PNG of the user agent's page for a human to review,
// and marks the module for REVIEW. Without Chromium the module is SKIPPED.
func (m *moduleRun) screenshot(name, what string) {
	data, err := m.agent.screenshot(m.ctx)
	if errors.Is(err, errNoBrowser) {
		m.skip("the screenshot of %s needs Chromium: %s", what, m.h.browserUnavailable)
	}
	if err != nil {
		m.skip("the screenshot of %s failed: %v", what, err)
	}
	m.saveScreenshot(name, what, data)
}

// saveScreenshot saves data for a human to review and marks the module for
// REVIEW. Without data, which the HTTP driver never has, the module is
// SKIPPED.
func (m *moduleRun) saveScreenshot(name, what string, data []byte) {
	if data == nil {
		m.skip("the screenshot of %s needs Chromium: %s", what, m.h.browserUnavailable)
	}
	file := unsafeFileCharacters.ReplaceAllString(fmt.Sprintf("%s_%s_%s_%s.png", m.plan, m.variant, m.spec.Name, name), "_")
	path := filepath.Join(m.h.opts.ArtifactsDir, file)
	if err := os.MkdirAll(m.h.opts.ArtifactsDir, 0o755); err != nil {
		m.skip("cannot save the screenshot of %s: %v", what, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		m.skip("cannot save the screenshot of %s: %v", what, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.screenshots = append(m.screenshots, path)
	reason := fmt.Sprintf("review %s in %s", what, path)
	if m.reviewReason != "" {
		reason = m.reviewReason + "; " + reason
	}
	m.reviewReason = reason
}

const alphanumerics = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n random alphanumeric characters.
func randomString(n int) string {
	b := make([]byte, n)
	limit := big.NewInt(int64(len(alphanumerics)))
	for i := range b {
		v, err := rand.Int(rand.Reader, limit)
		if err != nil {
			panic(err)
		}
		b[i] = alphanumerics[v.Int64()]
	}
	return string(b)
}

// randomValue returns a state or nonce as the official suite makes it: n
// alphanumerics, or for n above 10, n-4 alphanumerics and "-._~".
func randomValue(n int) string {
	if n <= 10 {
		return randomString(n)
	}
	return randomString(n-4) + "-._~"
}
