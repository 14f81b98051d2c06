package conformance

import (
	"context"
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
	// agent is told of a callback server elsewhere and submits the
	// form_post page to the test server like any other form.
	agent := newHTTPAgent(server.Client(), "http://callback.invalid", "127.0.0.1", selectors, "alice", "secret")

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
	agent := newHTTPAgent(server.Client(), server.URL, "provider.invalid", selectors, "alice", "secret")

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
	agent := newHTTPAgent(server.Client(), "http://callback.invalid", "127.0.0.1", selectors, "alice", "secret")
	nav, err := agent.navigate(context.Background(), server.URL+"/authorize", navigateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nav.ExternalRedirect != "https://rp.example.org/callback?code=x" {
		t.Errorf("external redirect = %q", nav.ExternalRedirect)
	}
}
