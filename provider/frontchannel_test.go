package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// browserPostLogoutURL is the post-logout redirect URI of the Chromium test.
// It starts with testsupport.CallbackURL, so that the tab reports the
// request on its callbacks channel.
const browserPostLogoutURL = testsupport.CallbackURL + "/signed-out"

// frontchannelRequest is what a relying party's frontchannel_logout_uri
// endpoint received.
type frontchannelRequest struct {
	Method  string
	Path    string
	Query   url.Values
	Referer string
}

// frontchannelRP is a relying party's front-channel logout endpoint on
// 127.0.0.1. It responds with 200 and Cache-Control no-store, as
// Front-Channel Logout 1.0 recommends, and records every request.
type frontchannelRP struct {
	URL      string
	requests chan frontchannelRequest
}

func startFrontchannelRP(t *testing.T) *frontchannelRP {
	t.Helper()
	rp := &frontchannelRP{requests: make(chan frontchannelRequest, 8)}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case rp.requests <- frontchannelRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Referer: r.Referer()}:
		default:
			t.Errorf("front-channel endpoint received more requests than the test reads: %s %s", r.Method, r.URL)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!DOCTYPE html><title>Signed out</title><p>Signed out of the app.</p>"))
	}))
	t.Cleanup(server.Close)
	rp.URL = server.URL
	return rp
}

// next returns the next request the endpoint received, or fails the test
// after timeout.
func (rp *frontchannelRP) next(t *testing.T, timeout time.Duration) frontchannelRequest {
	t.Helper()
	select {
	case request := <-rp.requests:
		return request
	case <-time.After(timeout):
		t.Fatalf("%s received no front-channel logout request within %s", rp.URL, timeout)
		return frontchannelRequest{}
	}
}

// createFrontchannelClient registers a first-party client with a
// frontchannel_logout_uri, which may be empty, and returns its id and
// secret.
func createFrontchannelClient(t *testing.T, env *testEnv, name, frontchannelURI string, postLogout ...string) (string, string) {
	t.Helper()
	client := &storage.Client{
		ID:                       uuid.NewString(),
		Name:                     name,
		RedirectURIs:             []string{testsupport.CallbackURL},
		PostLogoutRedirectURIs:   postLogout,
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"openid", "profile", "email", "offline_access"},
		FirstParty:               true,
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: provider.AlgRS256,
		Metadata: storage.ClientMetadata{
			FrontchannelLogoutURI:             frontchannelURI,
			FrontchannelLogoutSessionRequired: frontchannelURI != "",
		},
	}
	return client.ID, testsupport.CreateClient(t, env.store, env.secret, client)
}

// checkFrontchannelRequest checks that a front-channel logout request is a
// GET to path with exactly iss and sid, as the conformance suite's
// oidcc-frontchannel-rp-initiated-logout module expects, and no Referer.
func checkFrontchannelRequest(t *testing.T, got frontchannelRequest, path, issuer, sid string) {
	t.Helper()
	if got.Method != http.MethodGet {
		t.Errorf("front-channel logout method = %s, want GET", got.Method)
	}
	if got.Path != path {
		t.Errorf("front-channel logout path = %s, want %s", got.Path, path)
	}
	want := url.Values{"iss": {issuer}, "sid": {sid}}
	if got.Query.Encode() != want.Encode() {
		t.Errorf("front-channel logout query = %v, want exactly %v", got.Query, want)
	}
	if got.Referer != "" {
		t.Errorf("front-channel logout request has Referer %q, want none", got.Referer)
	}
}

// sidOf returns the sid claim of an ID token.
func sidOf(t *testing.T, token *oauth2.Token) string {
	t.Helper()
	raw, _ := token.Extra("id_token").(string)
	_, claims := decodeJWT(t, raw)
	sid, _ := claims["sid"].(string)
	if sid == "" {
		t.Fatalf("ID token has no sid: %v", claims)
	}
	return sid
}

func TestFrontchannelLogoutInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	env := newTestEnv(t)
	firstApp, secondApp := startFrontchannelRP(t), startFrontchannelRP(t)
	firstID, firstSecret := createFrontchannelClient(t, env, "First app", firstApp.URL+"/logout", browserPostLogoutURL)
	secondID, secondSecret := createFrontchannelClient(t, env, "Second app", secondApp.URL+"/session/end", browserPostLogoutURL)
	user, password := env.createUser(t, "flora")
	tab := newBrowserTab(t, startChromium(t, chromium))

	firstToken := signInInBrowser(t, env, tab, newRelyingParty(t, env, firstID, firstSecret), user.Username, password)
	// The second app signs in through the login session the first started.
	secondToken := signInInBrowser(t, env, tab, newRelyingParty(t, env, secondID, secondSecret), "", "")
	sid := sidOf(t, firstToken)
	if other := sidOf(t, secondToken); other != sid {
		t.Fatalf("the two ID tokens name different login sessions: %q and %q", sid, other)
	}

	state := rand.Text()
	tab.do(t, "opening the end_session endpoint",
		chromedp.Navigate(logoutURL(env, url.Values{
			"id_token_hint":            {secondToken.Extra("id_token").(string)},
			"post_logout_redirect_uri": {browserPostLogoutURL},
			"state":                    {state},
		})),
	)
	checkFrontchannelRequest(t, firstApp.next(t, stepTimeout), "/logout", env.issuer, sid)
	checkFrontchannelRequest(t, secondApp.next(t, stepTimeout), "/session/end", env.issuer, sid)

	landed := waitForCallback(t, tab)
	if !strings.HasPrefix(landed.String(), browserPostLogoutURL+"?") {
		t.Fatalf("after logout the browser went to %s, want %s", landed, browserPostLogoutURL)
	}
	if got, want := landed.Query().Encode(), (url.Values{"state": {state}}).Encode(); got != want {
		t.Errorf("post-logout redirect query = %s, want exactly %s", got, want)
	}

	tab.mu.Lock()
	logged := slices.Clone(tab.logged)
	tab.mu.Unlock()
	for _, line := range logged {
		if strings.Contains(line, "Content Security Policy") {
			t.Errorf("the browser reported a policy violation: %s", line)
		}
	}

	prompt := validAuthParams(firstID)
	prompt.Set("prompt", "none")
	tab.do(t, "authorizing with prompt=none after logout", chromedp.Navigate(authURL(env, prompt)))
	if got := waitForCallback(t, tab).Query().Get("error"); got != "login_required" {
		t.Errorf("prompt=none after logout gave error %q, want login_required", got)
	}
}

// signInInBrowser runs the code flow in tab and exchanges the code. With a
// username it signs in on the login page; without one the provider must
// redirect at once, through the tab's login session.
func signInInBrowser(t *testing.T, env *testEnv, tab *browserTab, rp *relyingParty, username, password string) *oauth2.Token {
	t.Helper()
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	authorize := rp.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(rand.Text()))

	var callback *url.URL
	if username != "" {
		tab.do(t, "opening the login page",
			chromedp.Navigate(authorize),
			chromedp.WaitVisible(chromedp.CSS(usernameInput)),
			chromedp.SendKeys(chromedp.CSS(usernameInput), username),
			chromedp.SendKeys(chromedp.CSS(passwordInput), password),
		)
		params := tab.clickToCallback(t, chromedp.CSS(signInButton))
		callback = &url.URL{RawQuery: params.Encode()}
	} else {
		tab.do(t, "authorizing in the login session", chromedp.Navigate(authorize))
		callback = waitForCallback(t, tab)
	}

	params := callback.Query()
	if params.Get("error") != "" {
		t.Fatalf("authorization failed: %s: %s", params.Get("error"), params.Get("error_description"))
	}
	if params.Get("state") != state {
		t.Fatalf("callback state = %q, want %q", params.Get("state"), state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	token, err := rp.config.Exchange(ctx, params.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange failed: %v", err)
	}
	return token
}

// waitForCallback returns the URL of the tab's next request to
// testsupport.CallbackURL.
func waitForCallback(t *testing.T, tab *browserTab) *url.URL {
	t.Helper()
	select {
	case raw := <-tab.callbacks:
		callback, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("callback URL %q is invalid: %v", raw, err)
		}
		return callback
	case <-time.After(stepTimeout):
		t.Fatalf("timed out after %s waiting for a request to %s\n%s", stepTimeout, testsupport.CallbackURL, tab.state())
		return nil
	}
}

// frontchannelPage is the parts of the front-channel logout page the tests
// check.
type frontchannelPage struct {
	policy      map[string][]string
	frames      []string
	continueURL string
	hasLink     bool
	scripts     []*html.Node
}

func parseFrontchannelPage(t *testing.T, page *testsupport.Page) frontchannelPage {
	t.Helper()
	if page.Status != http.StatusOK || page.Location != "" {
		t.Fatalf("end_session gave %d, Location %q; want the front-channel logout page: %.400s", page.Status, page.Location, page.Body)
	}
	doc, err := html.Parse(strings.NewReader(page.Body))
	if err != nil {
		t.Fatalf("parse page: %v", err)
	}
	parsed := frontchannelPage{policy: map[string][]string{}}
	for _, directive := range strings.Split(page.Header.Get("Content-Security-Policy"), ";") {
		fields := strings.Fields(directive)
		if len(fields) > 0 {
			parsed.policy[fields[0]] = fields[1:]
		}
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "iframe":
				parsed.frames = append(parsed.frames, attribute(n, "src"))
			case "a":
				if attribute(n, "id") == "continue" {
					parsed.hasLink = true
					parsed.continueURL = attribute(n, "href")
				}
			case "script":
				parsed.scripts = append(parsed.scripts, n)
			}
		}
		for child := n.FirstChild; child != nil; child = child.NextSibling {
			walk(child)
		}
	}
	walk(doc)
	return parsed
}

func attribute(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func TestFrontchannelLogoutPage(t *testing.T) {
	env := newTestEnv(t)
	firstApp, secondApp := startFrontchannelRP(t), startFrontchannelRP(t)
	firstURI := firstApp.URL + "/logout?tenant=blue"
	secondURI := secondApp.URL + "/fc;x,y"
	firstID, firstSecret := createFrontchannelClient(t, env, "First app", firstURI, postLogoutURL)
	secondID, secondSecret := createFrontchannelClient(t, env, "Second app", secondURI, postLogoutURL)
	plainID, plainSecret := createFrontchannelClient(t, env, "Plain app", "", postLogoutURL)
	_, password := env.createUser(t, "gale")
	b := newBrowser(t)
	signedInApp(t, env, b, firstID, firstSecret, "gale", password)
	signedInApp(t, env, b, secondID, secondSecret, "gale", password)
	token := signedInApp(t, env, b, plainID, plainSecret, "gale", password)
	sid := sidOf(t, token)

	got := b.Get(logoutURL(env, url.Values{
		"id_token_hint": {token.Extra("id_token").(string)}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"fc-state-1"},
	}))
	page := parseFrontchannelPage(t, got)

	t.Run("headers", func(t *testing.T) {
		if cache := got.Header.Get("Cache-Control"); cache != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", cache)
		}
		if got := page.policy["default-src"]; !slices.Equal(got, []string{"'none'"}) {
			t.Errorf("default-src = %v, want 'none'", got)
		}
		if got := page.policy["frame-ancestors"]; !slices.Equal(got, []string{"'none'"}) {
			t.Errorf("frame-ancestors = %v, want 'none'", got)
		}
		// The frames follow the session's clients, which Redis keeps as an
		// unordered set.
		wantFrames := []string{firstApp.URL + "/logout", secondApp.URL + "/fc%3Bx%2Cy"}
		slices.Sort(wantFrames)
		if got := slices.Sorted(slices.Values(page.policy["frame-src"])); !slices.Equal(got, wantFrames) {
			t.Errorf("frame-src = %v, want %v", got, wantFrames)
		}
		if len(page.policy) != 5 {
			t.Errorf("policy %q has %d directives, want default-src, style-src, frame-ancestors, frame-src and script-src",
				got.Header.Get("Content-Security-Policy"), len(page.policy))
		}
	})

	t.Run("iframes", func(t *testing.T) {
		if len(page.frames) != 2 {
			t.Fatalf("page has %d iframes (%v), want one per front-channel client", len(page.frames), page.frames)
		}
		wants := []struct {
			uri   string
			query url.Values
		}{
			{firstURI, url.Values{"tenant": {"blue"}, "iss": {env.issuer}, "sid": {sid}}},
			{secondURI, url.Values{"iss": {env.issuer}, "sid": {sid}}},
		}
		for i, want := range wants {
			registered, _ := url.Parse(want.uri)
			// Matched by host, since the frames come in no fixed order.
			src := page.frames[i]
			for _, candidate := range page.frames {
				if u, err := url.Parse(candidate); err == nil && u.Host == registered.Host {
					src = candidate
				}
			}
			frame, err := url.Parse(src)
			if err != nil {
				t.Fatalf("iframe src %q: %v", src, err)
			}
			if frame.Scheme != registered.Scheme || frame.Host != registered.Host || frame.Path != registered.Path {
				t.Errorf("iframe %d src = %s, want the registered %s", i, frame, want.uri)
			}
			if frame.Query().Encode() != want.query.Encode() {
				t.Errorf("iframe %d query = %v, want %v", i, frame.Query(), want.query)
			}
		}
	})

	t.Run("continue without JavaScript", func(t *testing.T) {
		if !page.hasLink {
			t.Fatal("page has no link to continue")
		}
		if want := postLogoutURL + "?state=fc-state-1"; page.continueURL != want {
			t.Errorf("continue link = %q, want %q", page.continueURL, want)
		}
		if !strings.Contains(got.Body, "Continue to Plain app") {
			t.Errorf("continue link does not name the client: %.600s", got.Body)
		}
	})

	t.Run("script allowed by nonce only", func(t *testing.T) {
		if len(page.scripts) != 1 {
			t.Fatalf("page has %d scripts, want 1", len(page.scripts))
		}
		nonce := attribute(page.scripts[0], "nonce")
		if len(nonce) < 16 {
			t.Fatalf("script nonce %q is missing or short", nonce)
		}
		if got := page.policy["script-src"]; !slices.Equal(got, []string{"'nonce-" + nonce + "'"}) {
			t.Errorf("script-src = %v, want only the page's nonce %q", got, nonce)
		}
		again := parseFrontchannelPage(t, frontchannelPageFor(t, env, firstID, firstSecret, "gale", password))
		if len(again.scripts) != 1 || attribute(again.scripts[0], "nonce") == nonce {
			t.Errorf("a second logout page reused the nonce %q", nonce)
		}
	})

	t.Run("session ended", func(t *testing.T) {
		params := validAuthParams(plainID)
		params.Set("prompt", "none")
		if query := testsupport.CallbackParams(t, b.Get(authURL(env, params))); query.Get("error") != "login_required" {
			t.Errorf("prompt=none after logout: %v, want login_required", query)
		}
	})

	if len(firstApp.requests)+len(secondApp.requests) != 0 {
		t.Error("the provider called a front-channel URI itself; only the browser may")
	}
}

// frontchannelPageFor signs a new browser in to a client and ends its
// session with a hint and a post-logout redirect URI.
func frontchannelPageFor(t *testing.T, env *testEnv, clientID, secret, username, password string) *testsupport.Page {
	t.Helper()
	b := newBrowser(t)
	token := signedInApp(t, env, b, clientID, secret, username, password)
	return b.Get(logoutURL(env, url.Values{
		"id_token_hint": {token.Extra("id_token").(string)}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"fc-state-2"},
	}))
}

func TestFrontchannelLogoutWithoutRedirect(t *testing.T) {
	env := newTestEnv(t)
	app := startFrontchannelRP(t)
	clientID, secret := createFrontchannelClient(t, env, "Notified app", app.URL+"/logout", postLogoutURL)
	_, password := env.createUser(t, "hugh")

	t.Run("hint without post-logout URI", func(t *testing.T) {
		b := newBrowser(t)
		token := signedInApp(t, env, b, clientID, secret, "hugh", password)
		got := b.Get(logoutURL(env, url.Values{"id_token_hint": {token.Extra("id_token").(string)}, "state": {"only-state"}}))
		page := parseFrontchannelPage(t, got)
		checkSignedOutFrontchannelPage(t, got, page, app.URL+"/logout", env.issuer, sidOf(t, token))
	})

	t.Run("confirmed without hint", func(t *testing.T) {
		b := newBrowser(t)
		token := signedInApp(t, env, b, clientID, secret, "hugh", password)
		confirm := b.Get(logoutURL(env, url.Values{}))
		if confirm.Status != http.StatusOK || !strings.Contains(confirm.Body, "Sign out?") {
			t.Fatalf("end_session without parameters: %d, want the confirmation page: %.300s", confirm.Status, confirm.Body)
		}
		form := testsupport.HiddenInputs(t, confirm.Body)
		form.Set("decision", "logout")
		got := b.PostForm(env.issuer+"/oauth2/logout", form)
		page := parseFrontchannelPage(t, got)
		checkSignedOutFrontchannelPage(t, got, page, app.URL+"/logout", env.issuer, sidOf(t, token))
	})
}

// checkSignedOutFrontchannelPage checks a front-channel logout page that has
// nowhere to go on to: iframes, but no script and no continue link.
func checkSignedOutFrontchannelPage(t *testing.T, got *testsupport.Page, page frontchannelPage, frontchannelURI, issuer, sid string) {
	t.Helper()
	if len(page.frames) != 1 {
		t.Fatalf("page has iframes %v, want one", page.frames)
	}
	if want := frontchannelURI + "?" + (url.Values{"iss": {issuer}, "sid": {sid}}).Encode(); page.frames[0] != want {
		t.Errorf("iframe src = %q, want %q", page.frames[0], want)
	}
	if len(page.scripts) != 0 || page.hasLink {
		t.Errorf("page without a post-logout URI has %d scripts and link %v, want neither", len(page.scripts), page.hasLink)
	}
	if _, ok := page.policy["script-src"]; ok {
		t.Errorf("policy allows scripts: %q", got.Header.Get("Content-Security-Policy"))
	}
	if !strings.Contains(got.Body, "You are signed out of Latchkey.") {
		t.Errorf("page does not say the person is signed out: %.400s", got.Body)
	}
}

func TestLogoutWithoutFrontchannelURI(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := createFrontchannelClient(t, env, "Plain app", "", postLogoutURL)
	_, password := env.createUser(t, "ivy")
	b := newBrowser(t)
	token := signedInApp(t, env, b, clientID, secret, "ivy", password)

	got := b.Get(logoutURL(env, url.Values{
		"id_token_hint": {token.Extra("id_token").(string)}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"plain-state"},
	}))
	if got.Status != http.StatusSeeOther || got.Location != postLogoutURL+"?state=plain-state" {
		t.Errorf("logout of a client without a front-channel URI: %d, Location %q; want a direct redirect with state", got.Status, got.Location)
	}
	if strings.Contains(got.Body, "<iframe") {
		t.Errorf("the redirect carries an iframe: %.300s", got.Body)
	}
}

func TestDiscoveryFrontchannelLogout(t *testing.T) {
	env := newTestEnv(t)
	resp, err := http.Get(env.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var metadata map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&metadata); err != nil {
		t.Fatalf("decode metadata: %v", err)
	}
	for _, name := range []string{"frontchannel_logout_supported", "frontchannel_logout_session_supported"} {
		if got := metadata[name]; got != true {
			t.Errorf("%s = %v, want true", name, got)
		}
	}
}

// TestLogoutRedirectRules covers the RP-initiated logout requests of the
// conformance suite's oidcc-rp-initiated-logout-* modules.
func TestLogoutRedirectRules(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := createFrontchannelClient(t, env, "Logout app", "", postLogoutURL)
	_, password := env.createUser(t, "jude")

	clientKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(t *testing.T, algorithm jose.SignatureAlgorithm, key any) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: algorithm, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		raw, err := josejwt.Signed(signer).Claims(map[string]any{
			"iss": clientID, "aud": env.issuer, "sub": "SubjectID", "nonce": "flibble",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	rejected := map[string]func(t *testing.T, idToken string) url.Values{
		"unregistered URI": func(t *testing.T, idToken string) url.Values {
			return url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogoutURL + "-bad"}, "state": {"s-1"}}
		},
		"query added to registered URI": func(t *testing.T, idToken string) url.Values {
			return url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {postLogoutURL + "?foo=bar"}, "state": {"s-1"}}
		},
		"hint with alg none": func(t *testing.T, idToken string) url.Values {
			parts := strings.Split(idToken, ".")
			unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
			return url.Values{"id_token_hint": {unsigned}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"s-1"}}
		},
		"hint signed by the client's RSA key": func(t *testing.T, _ string) url.Values {
			return url.Values{"id_token_hint": {forged(t, jose.RS256, clientKey)}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"s-1"}}
		},
		"hint signed with the client secret": func(t *testing.T, _ string) url.Values {
			return url.Values{"id_token_hint": {forged(t, jose.HS256, []byte(secret))}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"s-1"}}
		},
		"missing hint": func(t *testing.T, _ string) url.Values {
			return url.Values{"post_logout_redirect_uri": {postLogoutURL}, "state": {"s-1"}}
		},
		"missing hint with client_id": func(t *testing.T, _ string) url.Values {
			return url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {postLogoutURL}, "state": {"s-1"}}
		},
	}
	for name, params := range rejected {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t)
			token := signedInApp(t, env, b, clientID, secret, "jude", password)
			got := b.Get(logoutURL(env, params(t, token.Extra("id_token").(string))))
			if got.Status != http.StatusBadRequest || got.Location != "" {
				t.Errorf("end_session: %d, Location %q; want 400 and no redirect", got.Status, got.Location)
			}
			prompt := validAuthParams(clientID)
			prompt.Set("prompt", "none")
			if query := testsupport.CallbackParams(t, b.Get(authURL(env, prompt))); query.Get("code") == "" {
				t.Errorf("a rejected logout request ended the session: %v", query)
			}
		})
	}

	confirmed := map[string]url.Values{
		"no parameters": {},
		"state only":    {"state": {"s-1"}},
	}
	for name, params := range confirmed {
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t)
			signedInApp(t, env, b, clientID, secret, "jude", password)
			confirm := b.Get(logoutURL(env, params))
			if confirm.Status != http.StatusOK || confirm.Location != "" || !strings.Contains(confirm.Body, "Sign out?") {
				t.Fatalf("end_session: %d, Location %q; want the confirmation page: %.300s", confirm.Status, confirm.Location, confirm.Body)
			}
			form := testsupport.HiddenInputs(t, confirm.Body)
			form.Set("decision", "logout")
			got := b.PostForm(env.issuer+"/oauth2/logout", form)
			if got.Status != http.StatusOK || got.Location != "" || !strings.Contains(got.Body, "You are signed out") {
				t.Errorf("confirmed logout: %d, Location %q; want the signed-out page", got.Status, got.Location)
			}
			expectLoggedOut(t, env, b, clientID)
		})
	}

	t.Run("hint and state without URI", func(t *testing.T) {
		b := newBrowser(t)
		token := signedInApp(t, env, b, clientID, secret, "jude", password)
		got := b.Get(logoutURL(env, url.Values{"id_token_hint": {token.Extra("id_token").(string)}, "state": {"s-1"}}))
		if got.Status != http.StatusOK || got.Location != "" || !strings.Contains(got.Body, "You are signed out") {
			t.Errorf("end_session: %d, Location %q; want the signed-out page", got.Status, got.Location)
		}
		expectLoggedOut(t, env, b, clientID)
	})

	t.Run("hint and URI without state", func(t *testing.T) {
		b := newBrowser(t)
		token := signedInApp(t, env, b, clientID, secret, "jude", password)
		got := b.Get(logoutURL(env, url.Values{"id_token_hint": {token.Extra("id_token").(string)}, "post_logout_redirect_uri": {postLogoutURL}}))
		if got.Status != http.StatusSeeOther || got.Location != postLogoutURL {
			t.Errorf("end_session: %d, Location %q; want a redirect to exactly %s", got.Status, got.Location, postLogoutURL)
		}
		expectLoggedOut(t, env, b, clientID)
	})
}

// expectLoggedOut checks that browser b has no login session: prompt=none
// must fail with login_required.
func expectLoggedOut(t *testing.T, env *testEnv, b *browser, clientID string) {
	t.Helper()
	prompt := validAuthParams(clientID)
	prompt.Set("prompt", "none")
	if query := testsupport.CallbackParams(t, b.Get(authURL(env, prompt))); query.Get("error") != "login_required" {
		t.Errorf("prompt=none after logout: %v, want login_required", query)
	}
}
