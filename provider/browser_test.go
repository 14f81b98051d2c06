package provider_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
)

// Timeouts of the browser tests. browserTimeout bounds the whole test, from
// Chromium's start to its exit. stepTimeout bounds each group of steps in a
// tab, such as a click and the wait for the next page, so that a step that
// hangs fails while the tab's state can still be read for the message.
const (
	browserTimeout = 60 * time.Second
	stepTimeout    = 15 * time.Second
)

// CSS selectors of the page contract in templates/login.html and
// templates/consent.html.
const (
	usernameInput = `input[name=username]`
	passwordInput = `input[name=password]`
	signInButton  = `button[type=submit]`
	loginError    = `p.error`
	allowButton   = `button[name=decision][value=allow]`
)

func TestBrowserSignIn(t *testing.T) {
	chromium := chromiumPath(t)
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})
	rp := newRelyingParty(t, env, clientID, secret)
	browserCtx := startChromium(t, chromium)

	// Each subtest signs in a user of its own, because the provider
	// remembers consent per user and client.
	t.Run("code flow with consent", func(t *testing.T) {
		user, password := env.createUser(t, "grace")
		tab := newBrowserTab(t, browserCtx)
		verifier := oauth2.GenerateVerifier()
		state, nonce := rand.Text(), rand.Text()
		authURL := rp.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

		tab.do(t, "opening the authorization URL",
			chromedp.Navigate(authURL),
			chromedp.WaitVisible(chromedp.CSS(usernameInput)),
		)
		if path := tab.location(t).Path; path != "/login" {
			t.Errorf("authorization URL led to %s, want /login", path)
		}
		if title := tab.text(t, "title"); title != "Sign in · Latchkey" {
			t.Errorf("login page title = %q, want %q", title, "Sign in · Latchkey")
		}
		tab.screenshot(t, "login.png")

		tab.do(t, "signing in",
			chromedp.SendKeys(chromedp.CSS(usernameInput), user.Username),
			chromedp.SendKeys(chromedp.CSS(passwordInput), password),
			chromedp.Click(chromedp.CSS(signInButton)),
			chromedp.WaitVisible(chromedp.CSS(allowButton)),
		)
		if path := tab.location(t).Path; path != "/consent" {
			t.Errorf("sign-in led to %s, want /consent", path)
		}
		if heading := tab.text(t, "h1"); heading != "Allow access?" {
			t.Errorf("consent page heading = %q, want %q", heading, "Allow access?")
		}
		consent := tab.text(t, "main")
		for _, want := range []string{"Test app", "Signed in as grace", "Confirm your identity", "See your email address"} {
			if !strings.Contains(consent, want) {
				t.Errorf("consent page does not show %q: %q", want, consent)
			}
		}

		params := tab.clickToCallback(t, chromedp.CSS(allowButton))
		if params.Get("error") != "" {
			t.Fatalf("authorization failed: %s: %s", params.Get("error"), params.Get("error_description"))
		}
		if params.Get("state") != state {
			t.Errorf("callback state = %q, want %q", params.Get("state"), state)
		}
		code := params.Get("code")
		if code == "" {
			t.Fatalf("callback has no code: %v", params)
		}

		sessionCookie := tab.cookie(t, env.issuer, "latchkey_session")
		if sessionCookie == nil {
			t.Fatal("no latchkey_session cookie after sign-in")
		}
		if !sessionCookie.HTTPOnly {
			t.Error("latchkey_session cookie is not HttpOnly")
		}
		if sessionCookie.SameSite != network.CookieSameSiteLax {
			t.Errorf("latchkey_session cookie SameSite = %q, want Lax", sessionCookie.SameSite)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		token, err := rp.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("code exchange failed: %v", err)
		}
		rawIDToken, _ := token.Extra("id_token").(string)
		idToken, err := rp.verifier.Verify(ctx, rawIDToken)
		if err != nil {
			t.Fatalf("go-oidc rejected the ID token: %v", err)
		}
		if idToken.Subject != user.ID {
			t.Errorf("ID token sub = %q, want %q", idToken.Subject, user.ID)
		}
		if idToken.Nonce != nonce {
			t.Errorf("ID token nonce = %q, want %q", idToken.Nonce, nonce)
		}
		if err := idToken.VerifyAccessToken(token.AccessToken); err != nil {
			t.Errorf("at_hash does not match the access token: %v", err)
		}
		var claims struct {
			PreferredUsername string `json:"preferred_username"`
			Email             string `json:"email"`
		}
		if err := idToken.Claims(&claims); err != nil {
			t.Fatalf("decoding the ID token claims failed: %v", err)
		}
		if claims.PreferredUsername != user.Username {
			t.Errorf("ID token preferred_username = %q, want %q", claims.PreferredUsername, user.Username)
		}
		if claims.Email != user.Email {
			t.Errorf("ID token email = %q, want %q", claims.Email, user.Email)
		}

		tab.checkNoOutsideRequests(t, env.issuer)
	})

	t.Run("wrong password", func(t *testing.T) {
		user, password := env.createUser(t, "heidi")
		tab := newBrowserTab(t, browserCtx)
		verifier := oauth2.GenerateVerifier()
		authURL := rp.config.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(verifier), oidc.Nonce(rand.Text()))

		tab.do(t, "signing in with a wrong password",
			chromedp.Navigate(authURL),
			chromedp.SendKeys(chromedp.CSS(usernameInput), user.Username),
			chromedp.SendKeys(chromedp.CSS(passwordInput), "wrong-"+password),
			chromedp.Click(chromedp.CSS(signInButton)),
			chromedp.WaitVisible(chromedp.CSS(loginError)),
		)
		if message := tab.text(t, loginError); message != "Invalid username or password." {
			t.Errorf("login error = %q, want %q", message, "Invalid username or password.")
		}
		if path := tab.location(t).Path; path != "/login" {
			t.Errorf("page after a wrong password is %s, want /login", path)
		}
		if username := tab.value(t, usernameInput); username != user.Username {
			t.Errorf("username field = %q after the error, want %q kept", username, user.Username)
		}
		if typed := tab.value(t, passwordInput); typed != "" {
			t.Errorf("password field = %q after the error, want it empty", typed)
		}
		if len(tab.callbacks) != 0 {
			t.Errorf("a wrong password redirected to the client: %s", <-tab.callbacks)
		}
		if tab.cookie(t, env.issuer, "latchkey_session") != nil {
			t.Error("a wrong password set the latchkey_session cookie")
		}

		// The re-rendered form carries a new flow and CSRF token, so a
		// second try with the right password must go on to consent.
		tab.do(t, "signing in again with the right password",
			chromedp.SendKeys(chromedp.CSS(passwordInput), password),
			chromedp.Click(chromedp.CSS(signInButton)),
			chromedp.WaitVisible(chromedp.CSS(allowButton)),
		)
		tab.checkNoOutsideRequests(t, env.issuer)
	})
}

// chromiumPath returns the Chromium binary for the browser tests: Debian's
// /usr/bin/chromium, else the path or name in LATCHKEY_CHROMIUM. Without one
// the test fails, or skips when LATCHKEY_SKIP_BROWSER=1 is set.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/chromium"}
	if fromEnv := os.Getenv("LATCHKEY_CHROMIUM"); fromEnv != "" {
		candidates = append(candidates, fromEnv)
	}
	for _, candidate := range candidates {
		if path, err := exec.LookPath(candidate); err == nil {
			return path
		}
	}
	message := fmt.Sprintf("Chromium not found (tried %s). Install it with `apt-get update && apt-get install -y chromium`, "+
		"or set LATCHKEY_CHROMIUM to a Chromium binary. Set LATCHKEY_SKIP_BROWSER=1 to skip the browser tests.",
		strings.Join(candidates, ", "))
	if os.Getenv("LATCHKEY_SKIP_BROWSER") == "1" {
		t.Skip(message)
	}
	t.Fatal(message)
	return ""
}

// startChromium starts headless Chromium and returns its root context, which
// ends after browserTimeout. The chromedp allocator gives the browser a fresh
// user-data-dir in the system temporary directory. When the test ends, the
// allocator stops Chromium, kills its leftover child processes and removes
// that directory.
func startChromium(t *testing.T, execPath string) context.Context {
	t.Helper()
	ctx, cancelTimeout := context.WithTimeout(context.Background(), browserTimeout)
	options := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-gpu", true),
		// The next four flags turn off traffic that Chromium starts on its
		// own: QUIC, background services such as update checks, component
		// updates and sync. The tests must reach only 127.0.0.1. Some of
		// these flags are in DefaultExecAllocatorOptions too, and are set
		// here so that the list does not depend on chromedp's defaults.
		//
		// NOTE: Chromium 156 still calls connect() on a UDP socket to
		// 2001:4860:4860::8888 to check whether IPv6 is routable. That sends
		// no packet (strace shows no send on that socket).
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Resolve no host but 127.0.0.1, so that a request to any other
		// host fails inside Chromium. The rules also cover IP literals.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, options...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})

	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting Chromium %s failed: %v", execPath, err)
	}
	return browserCtx
}

// browserTab is a tab in a browser context of its own, so that it starts
// with no cookies. It records the URLs it requests and the browser log.
//
// No relying party listens at the callback URL. The tab pauses every request
// to the callback's origin and the test fulfills it, so neither the
// authorization code nor the provider's cookies, which Chromium also sends to
// other ports of 127.0.0.1, reach whatever listens on that port.
type browserTab struct {
	ctx context.Context
	// callbacks receives the URL of each request to testsupport.CallbackURL.
	callbacks chan string

	mu        sync.Mutex
	requested []string
	logged    []string
}

func newBrowserTab(t *testing.T, browserCtx context.Context) *browserTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tab := &browserTab{ctx: ctx, callbacks: make(chan string, 8)}

	if err := chromedp.Listen(ctx, tab.record); err != nil {
		t.Fatalf("opening a tab failed: %v", err)
	}
	callback, err := url.Parse(testsupport.CallbackURL)
	if err != nil {
		t.Fatal(err)
	}
	clientOrigin := callback.Scheme + "://" + callback.Host
	// Subscribe before enabling the interception, so that no paused request
	// is missed.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	_, err = chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: clientOrigin + "/*"}},
	})
	if err != nil {
		t.Fatalf("enabling interception of %s failed: %v", clientOrigin, err)
	}
	go tab.fulfillClientRequests(paused)
	return tab
}

// fulfillClientRequests fulfills the paused requests to the client's origin
// until the tab closes. The callback gets a short page and its URL goes to
// tab.callbacks. Any other request gets a 404.
//
// The callback page names an empty icon, because Chromium requests
// /favicon.ico itself, outside the tab, where the interception does not
// pause it.
func (tab *browserTab) fulfillClientRequests(paused iter.Seq2[fetch.EventRequestPaused, error]) {
	for event, err := range paused {
		if err != nil {
			return
		}
		status, body := http.StatusNotFound, "<!DOCTYPE html><title>Not found</title><p>Not found.</p>"
		if strings.HasPrefix(event.Request.URL, testsupport.CallbackURL) {
			status = http.StatusOK
			body = `<!DOCTYPE html><title>Callback</title><link rel="icon" href="data:,"><p>The test received the callback.</p>`
			select {
			case tab.callbacks <- event.Request.URL:
			default:
				tab.note("more callback requests than the test reads: " + shorten(event.Request.URL))
			}
		}
		answer := fetch.FulfillRequestParams{
			RequestID:       event.RequestID,
			ResponseCode:    int64(status),
			ResponseHeaders: []*fetch.HeaderEntry{{Name: "Content-Type", Value: "text/html; charset=utf-8"}},
			Body:            []byte(body),
		}
		if _, err := chromedp.Call(tab.ctx, fetch.FulfillRequest, answer); err != nil && tab.ctx.Err() == nil {
			tab.note(fmt.Sprintf("fulfilling the request to %s failed: %v", shorten(event.Request.URL), err))
		}
	}
}

// record is the tab's event listener. It runs in the tab's message loop, so
// it only appends.
func (tab *browserTab) record(event any) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	switch event := event.(type) {
	case *network.EventRequestWillBeSent:
		tab.requested = append(tab.requested, event.Request.URL)
	case *cdplog.EventEntryAdded:
		tab.logged = append(tab.logged, fmt.Sprintf("%s: %s (page %s)", event.Entry.Level, strings.TrimSpace(event.Entry.Text), shorten(event.Entry.URL)))
	}
}

// note adds a line of the test's own to the browser log.
func (tab *browserTab) note(line string) {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	tab.logged = append(tab.logged, "test: "+line)
}

func (tab *browserTab) requestedURLs() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return slices.Clone(tab.requested)
}

// state describes the tab for a failure message: its URL, the URLs it
// requested and its log. Long URLs are cut, because the flow tokens in them
// run to several hundred characters.
func (tab *browserTab) state() string {
	location, err := chromedp.Run(tab.ctx, chromedp.Location())
	if err != nil {
		location = fmt.Sprintf("unknown (%v)", err)
	}
	tab.mu.Lock()
	defer tab.mu.Unlock()
	var text strings.Builder
	fmt.Fprintf(&text, "page: %s\nrequested:", shorten(location))
	for _, requested := range tab.requested {
		fmt.Fprintf(&text, "\n  %s", shorten(requested))
	}
	text.WriteString("\nbrowser log:")
	for _, entry := range tab.logged {
		fmt.Fprintf(&text, "\n  %s", entry)
	}
	return text.String()
}

func shorten(text string) string {
	const maxLength = 160
	if len(text) <= maxLength {
		return text
	}
	return text[:maxLength] + "..."
}

// do runs the steps in the tab within stepTimeout and fails the test with the
// tab's state if one fails, for example when an element never appears.
func (tab *browserTab) do(t *testing.T, description string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s failed: %v\n%s", description, err, tab.state())
	}
}

func (tab *browserTab) location(t *testing.T) *url.URL {
	t.Helper()
	location, err := chromedp.Run(tab.ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("reading the page URL failed: %v", err)
	}
	parsed, err := url.Parse(location)
	if err != nil {
		t.Fatalf("page URL %q is invalid: %v", location, err)
	}
	return parsed
}

// text returns the rendered text of the first element that matches selector.
func (tab *browserTab) text(t *testing.T, selector string) string {
	t.Helper()
	text, err := chromedp.Run(tab.ctx, chromedp.TextContent(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("reading the text of %s failed: %v\n%s", selector, err, tab.state())
	}
	return strings.Join(strings.Fields(text), " ")
}

// value returns the current value of the input that matches selector.
func (tab *browserTab) value(t *testing.T, selector string) string {
	t.Helper()
	value, err := chromedp.Run(tab.ctx, chromedp.Value(chromedp.CSS(selector)))
	if err != nil {
		t.Fatalf("reading the value of %s failed: %v\n%s", selector, err, tab.state())
	}
	return value
}

// screenshot saves a PNG of the tab's viewport in the test's temporary
// directory and logs its path.
func (tab *browserTab) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(tab.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("taking a screenshot failed: %v", err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// clickToCallback clicks the element, waits for the request to the callback
// URL and returns the callback's query parameters.
func (tab *browserTab) clickToCallback(t *testing.T, button chromedp.CSS) url.Values {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(button)); err != nil {
		t.Fatalf("clicking %s failed: %v\n%s", button, err, tab.state())
	}

	select {
	case raw := <-tab.callbacks:
		callback, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("callback URL %q is invalid: %v", raw, err)
		}
		return callback.Query()
	case <-ctx.Done():
		t.Fatalf("timed out after %s waiting for a request to %s after clicking %s\n%s", stepTimeout, testsupport.CallbackURL, button, tab.state())
		return nil
	}
}

// cookie returns the browser's cookie with that name for pageURL, or nil.
func (tab *browserTab) cookie(t *testing.T, pageURL, name string) *network.Cookie {
	t.Helper()
	result, err := chromedp.Call(tab.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{pageURL}})
	if err != nil {
		t.Fatalf("reading cookies failed: %v", err)
	}
	for _, cookie := range result.Cookies {
		if cookie.Name == name {
			return cookie
		}
	}
	return nil
}

// checkNoOutsideRequests fails the test if the page requested anything other
// than the provider at issuer and the intercepted callback, for example a font
// or script from another host. It checks only the requests of the page, not
// those that Chromium makes itself, such as for /favicon.ico.
func (tab *browserTab) checkNoOutsideRequests(t *testing.T, issuer string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, origin := range []string{issuer, testsupport.CallbackURL} {
		parsed, err := url.Parse(origin)
		if err != nil {
			t.Fatal(err)
		}
		allowed[parsed.Host] = true
	}
	requested := tab.requestedURLs()
	if len(requested) == 0 {
		t.Error("the tab recorded no requests, so the check of their hosts is void")
	}
	for _, raw := range requested {
		parsed, err := url.Parse(raw)
		if err != nil || parsed.Scheme != "http" || !allowed[parsed.Host] {
			t.Errorf("the page requested %s, outside the provider and the callback", raw)
		}
	}
}
