package conformance

import (
	"crypto/tls"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The modules of the three logout plans: OpenID Connect RP-Initiated
// Logout 1.0, Back-Channel Logout 1.0 and Front-Channel Logout 1.0.

// logoutWait bounds the wait for the post-logout redirect and for the
// logout notifications.
const logoutWait = 15 * time.Second

var (
	checkPostLogoutRedirect = defineCheck("WaitForPostLogoutRedirect",
		"the provider redirects to the registered post_logout_redirect_uri after a logout with a valid id_token_hint")
	checkPostLogoutState = defineCheck("CheckPostLogoutState",
		"the post-logout redirect carries state exactly as sent, and none when none was sent")
	checkPostLogoutParameters = defineCheck("CheckForUnexpectedParametersInPostLogoutRedirect",
		"the post-logout redirect adds no parameters but state")
	checkLoggedOut = defineCheck("CheckSessionEndedAfterLogout",
		"after logout, prompt=none fails with an error that requires a user interface")
	checkBackchannelReceived = defineCheck("WaitForBackchannelLogoutRequest",
		"the provider posts a logout token to the backchannel_logout_uri")
	checkBackchannelTLS = defineCheck("EnsureBackchannelLogoutUsesTls12WithSecureCipherOrTls13",
		"the back-channel logout request uses TLS 1.2 with a secure cipher suite, or TLS 1.3")
	checkBackchannelTLS13 = defineCheck("EnsureBackchannelLogoutUsesTls13",
		"the back-channel logout request uses TLS 1.3")
	checkLogoutTokenPresent = defineCheck("CheckBackchannelLogoutRequestHasLogoutToken",
		"the back-channel logout request's form body has logout_token")
	checkBackchannelParameters = defineCheck("CheckForUnexpectedParametersInBackchannelLogoutRequest",
		"the back-channel logout request has no parameters but logout_token")
	checkLogoutTokenSignature = defineCheck("ValidateLogoutTokenSignature",
		"a key of the provider's JWK set verifies the logout token")
	checkLogoutTokenClaims = defineCheck("ValidateLogoutTokenClaims",
		"the logout token's iss, aud, iat, jti and events hold (Back-Channel Logout 1.0 §2.4)")
	checkLogoutTokenSub = defineCheck("CheckIdTokenSubMatchesLogoutToken",
		"the logout token's sub, if present, equals the ID token's")
	checkLogoutTokenSid = defineCheck("CheckIdTokenSidMatchesLogoutToken",
		"the logout token's sid, if present, equals the ID token's")
	checkLogoutTokenNonce = defineCheck("CheckLogoutTokenNoNonce",
		"the logout token has no nonce")
	checkLogoutTokenSubOrSid = defineCheck("CheckLogoutTokenHasSubOrSid",
		"the logout token has sub or sid")
	checkFrontchannelReceived = defineCheck("WaitForFrontchannelLogoutRequest",
		"the provider makes the browser load the frontchannel_logout_uri")
	checkFrontchannelIss = defineCheck("ValidateFrontchannelLogoutIss",
		"the front-channel logout request has iss equal to the issuer")
	checkFrontchannelSid = defineCheck("ValidateFrontchannelLogoutSid",
		"the front-channel logout request has sid equal to the ID token's")
	checkFrontchannelParameters = defineCheck("CheckForUnexpectedParametersInFrontchannelLogoutRequest",
		"the front-channel logout request has no parameters but iss and sid")
)

// logoutModule describes one oidcc-rp-initiated-logout-* module.
type logoutModule struct {
	name string
	// hint is "", "valid", "modified" (alg none) or "bad" (signed by the
	// client).
	hint string
	// redirect is "", "registered", "bad" or "query-added".
	redirect string
	state    bool
	// expectRedirect modules must redirect; the others must show a page.
	expectRedirect bool
	// confirm submits the provider's logout confirmation, for the modules
	// whose request must log the person out.
	confirm bool
}

var logoutModules = []logoutModule{
	{name: "oidcc-rp-initiated-logout", hint: "valid", redirect: "registered", state: true, expectRedirect: true, confirm: true},
	{name: "oidcc-rp-initiated-logout-no-state", hint: "valid", redirect: "registered", expectRedirect: true, confirm: true},
	{name: "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri", hint: "valid", redirect: "bad", state: true},
	{name: "oidcc-rp-initiated-logout-modified-id-token-hint", hint: "modified", redirect: "registered", state: true},
	{name: "oidcc-rp-initiated-logout-bad-id-token-hint", hint: "bad", redirect: "registered", state: true},
	{name: "oidcc-rp-initiated-logout-no-id-token-hint", redirect: "registered", state: true},
	{name: "oidcc-rp-initiated-logout-no-params", confirm: true},
	{name: "oidcc-rp-initiated-logout-no-post-logout-redirect-uri", hint: "valid", state: true, confirm: true},
	{name: "oidcc-rp-initiated-logout-only-state", state: true, confirm: true},
	{name: "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri", hint: "valid", redirect: "query-added", state: true},
}

func init() {
	for _, lm := range logoutModules {
		defineModule(&moduleSpec{Name: lm.name, run: lm.run, browser: !lm.expectRedirect})
	}
	for _, spec := range []*moduleSpec{
		{Name: "oidcc-rp-initiated-logout-discovery-endpoint-verification", run: logoutDiscoveryModule("")},
		{Name: "oidcc-backchannel-logout-discovery-endpoint-verification", run: logoutDiscoveryModule("backchannel")},
		{Name: "oidcc-frontchannel-logout-discovery-endpoint-verification", run: logoutDiscoveryModule("frontchannel")},
		{Name: "oidcc-backchannel-rp-initiated-logout", run: runBackchannelLogout},
		{Name: "oidcc-frontchannel-rp-initiated-logout", run: runFrontchannelLogout, browser: true},
	} {
		defineModule(spec)
	}
}

func logoutDiscoveryModule(channel string) func(*moduleRun) {
	return func(m *moduleRun) {
		m.loadServerConfig()
		verifyLogoutDiscovery(m, m.config, channel)
	}
}

// logoutClient registers a client with the logout URIs, or returns the
// static client, which must have registered them.
func (m *moduleRun) logoutClient(extra map[string]any) *client {
	metadata := map[string]any{"post_logout_redirect_uris": []string{m.base + "/post_logout_redirect"}}
	for name, value := range extra {
		metadata[name] = value
	}
	return m.newClient(clientOptions{metadata: metadata})
}

// loginForLogout runs a code flow so that the browser has a session to end.
func (m *moduleRun) loginForLogout(extra map[string]any) (*client, *flowResult) {
	m.setupFor(m.variant.ClientAuth)
	if _, ok := m.config.Raw["end_session_endpoint"].(string); !ok {
		report(m, checkDiscoveryEndSession, Fatal, "discovery has no end_session_endpoint")
	}
	c := m.logoutClient(extra)
	return c, m.runFlow(c, m.newAuthRequest(c), flowOptions{})
}

func (lm logoutModule) run(m *moduleRun) {
	c, f := m.loginForLogout(nil)
	params := url.Values{}
	switch lm.hint {
	case "valid":
		params.Set("id_token_hint", f.idToken().Raw)
	case "modified":
		params.Set("id_token_hint", unsignedCopy(f.idToken()))
	case "bad":
		params.Set("id_token_hint", m.foreignIDToken(c))
	}
	switch lm.redirect {
	case "registered":
		params.Set("post_logout_redirect_uri", m.base+"/post_logout_redirect")
	case "bad":
		params.Set("post_logout_redirect_uri", m.base+"/bad_post_logout_redirect_uri")
	case "query-added":
		params.Set("post_logout_redirect_uri", m.base+"/post_logout_redirect?foo=bar")
	}
	state := ""
	if lm.state {
		state = randomValue(10)
		params.Set("state", state)
	}

	since := m.inbox.count()
	nav := m.endSession(params, lm.confirm)
	if !lm.expectRedirect {
		m.expectErrorPage(since, nav, "the provider's logout page")
		return
	}
	m.checkPostLogoutRedirect(state, nav)
	m.checkSessionEnded(c)
}

// endSession sends the browser to the end_session_endpoint.
func (m *moduleRun) endSession(params url.Values, confirm bool) *navigation {
	endpoint := m.config.str("end_session_endpoint")
	target := endpoint
	if len(params) > 0 {
		target += "?" + params.Encode()
	}
	nav, err := m.agent.navigate(m.ctx, target, navigateOptions{confirmLogout: confirm})
	if err != nil {
		report(m, checkPostLogoutRedirect, Fatal, "the user agent failed at the end_session_endpoint: %v", err)
	}
	return nav
}

// checkPostLogoutRedirect waits for the post-logout redirect and checks its
// parameters (RP-Initiated Logout 1.0 §3).
func (m *moduleRun) checkPostLogoutRedirect(state string, nav *navigation) {
	event := m.inbox.next(m.ctx, logoutWait, eventPostLogoutRedirect)
	if event == nil {
		report(m, checkPostLogoutRedirect, Fatal, "no redirect reached the post_logout_redirect_uri: %s", nav.describe())
	}
	checkPostLogoutQuery(m, event.Query, state)
}

func checkPostLogoutQuery(r recorder, query url.Values, state string) {
	switch {
	case state == "" && query.Has("state"):
		report(r, checkPostLogoutState, Failure, "the redirect carries state %q, but none was sent", query.Get("state"))
	case state != "" && query.Get("state") != state:
		report(r, checkPostLogoutState, Failure, "state is %q, expected %q", query.Get("state"), state)
	}
	var extra []string
	for name := range query {
		if name != "state" {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		report(r, checkPostLogoutParameters, Warning, "the post-logout redirect adds parameters: %s", strings.Join(extra, ", "))
	}
}

// checkSessionEnded sends prompt=none, which must now fail with an error
// that requires a user interface.
func (m *moduleRun) checkSessionEnded(c *client) {
	req := m.newAuthRequest(c)
	req.set("prompt", "none")
	res := m.authorize(req)
	if res.callback == nil {
		report(m, checkLoggedOut, Failure, "prompt=none after logout reached no redirect URI: %s", res.nav.describe())
		return
	}
	errorCode := m.responseParameters(res).Get("error")
	if !slices.Contains(userInterfaceErrors, errorCode) {
		report(m, checkLoggedOut, Failure, "prompt=none after logout responded with error %q, expected one of %s: the session may not have ended", errorCode, strings.Join(userInterfaceErrors, ", "))
	}
}

// unsignedCopy returns token with its header replaced by {"alg":"none"}
// and an empty signature.
func unsignedCopy(token *jwtToken) string {
	parts := strings.Split(token.Raw, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
}

// foreignIDToken makes an ID token the provider did not issue: signed with
// the client's own RSA key, or with HS256 and the client secret for a
// client without one.
func (m *moduleRun) foreignIDToken(c *client) string {
	claims := map[string]any{"iss": c.ID, "aud": m.config.str("issuer"), "sub": "SubjectID", "nonce": "flibble",
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()}
	key := jose.SigningKey{Algorithm: jose.HS256, Key: []byte(c.Secret)}
	if c.Key != nil {
		key = jose.SigningKey{Algorithm: jose.RS256, Key: c.Key}
	}
	signer, err := jose.NewSigner(key, nil)
	if err != nil {
		panic(err)
	}
	payload := []byte(compactJSON(claims))
	signed, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	compact, _ := signed.CompactSerialize()
	return compact
}

// oidcc-backchannel-rp-initiated-logout: logging out sends a valid logout
// token to the backchannel_logout_uri and redirects with state.
func runBackchannelLogout(m *moduleRun) {
	c, f := m.loginForLogout(map[string]any{
		"backchannel_logout_uri":              m.base + "/backchannel_logout",
		"backchannel_logout_session_required": true,
	})
	state := randomValue(10)
	params := url.Values{"id_token_hint": {f.idToken().Raw}, "post_logout_redirect_uri": {m.base + "/post_logout_redirect"}, "state": {state}}
	nav := m.endSession(params, true)

	notification := m.inbox.next(m.ctx, logoutWait, eventBackchannelLogout)
	if notification == nil {
		report(m, checkBackchannelReceived, Fatal, "no logout token reached the backchannel_logout_uri")
	}
	checkBackchannelRequestTLS(m, notification.TLS)
	checkLogoutToken(m, notification, m.config.str("issuer"), c, m.keys, f.idToken(), m.now())
	m.checkPostLogoutRedirect(state, nav)
	m.checkSessionEnded(c)
}

// checkBackchannelRequestTLS checks the TLS of the back-channel request.
// Over a plain http callback server there is nothing to check.
func checkBackchannelRequestTLS(r recorder, state *tls.ConnectionState) {
	if state == nil {
		report(r, checkBackchannelTLS, Info, "the callback server is plain http, so the back-channel request's TLS is not checked")
		return
	}
	if state.Version < tls.VersionTLS12 || (state.Version == tls.VersionTLS12 && !secureTLS12Cipher(state.CipherSuite)) {
		report(r, checkBackchannelTLS, Warning, "the back-channel request used %s with %s", tls.VersionName(state.Version), tls.CipherSuiteName(state.CipherSuite))
	}
	if state.Version != tls.VersionTLS13 {
		report(r, checkBackchannelTLS13, Warning, "the back-channel request used %s, not TLS 1.3", tls.VersionName(state.Version))
	}
}

// secureTLS12Cipher reports whether a TLS 1.2 suite is one of the ECDHE
// AEAD suites that BCP 195 (RFC 9325 §4.2) recommends.
func secureTLS12Cipher(suite uint16) bool {
	switch suite {
	case tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// checkLogoutToken checks a back-channel logout request and its logout
// token (Back-Channel Logout 1.0 §2.4, §2.5).
func checkLogoutToken(r recorder, e *callbackEvent, issuer string, c *client, keys []jose.JSONWebKey, idToken *jwtToken, now time.Time) {
	raw := e.Form.Get("logout_token")
	if raw == "" {
		report(r, checkLogoutTokenPresent, Fatal, "the back-channel request's form body has no logout_token")
		return
	}
	var extra []string
	for name := range e.Form {
		if name != "logout_token" {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		report(r, checkBackchannelParameters, Warning, "the back-channel request has other parameters: %s", strings.Join(extra, ", "))
	}
	token, err := parseJWT(raw)
	if err != nil || token.Encrypted {
		report(r, checkLogoutTokenSignature, Failure, "the logout token is not a signed JWT: %v", err)
		return
	}
	if err := verifyJWS(token, keys, c.Secret, true); err != nil {
		report(r, checkLogoutTokenSignature, Failure, "%v", err)
	}

	if token.str("iss") != issuer {
		report(r, checkLogoutTokenClaims, Failure, "iss is %q, expected the issuer %q", token.str("iss"), issuer)
	}
	if !slices.Contains(token.audiences(), c.ID) {
		report(r, checkLogoutTokenClaims, Failure, "aud %v does not contain the client_id %q", token.audiences(), c.ID)
	}
	if iat, ok := token.number("iat"); !ok {
		report(r, checkLogoutTokenClaims, Failure, "iat is missing or not a number")
	} else if issued := unixTime(iat); issued.After(now.Add(clockSkew)) || issued.Before(now.Add(-24*time.Hour)) {
		report(r, checkLogoutTokenClaims, Failure, "iat %s is in the future or more than a day old", issued.Format(time.RFC3339))
	}
	if token.str("jti") == "" {
		report(r, checkLogoutTokenClaims, Failure, "jti is missing")
	}
	events, ok := token.Claims["events"].(map[string]any)
	member, hasMember := events[backchannelLogoutEvent].(map[string]any)
	if !ok || len(events) != 1 || !hasMember || len(member) != 0 {
		report(r, checkLogoutTokenClaims, Failure, "events is %s, expected exactly {%q: {}}", compactJSON(token.Claims["events"]), backchannelLogoutEvent)
	}

	sub, hasSub := token.Claims["sub"]
	sid, hasSid := token.Claims["sid"]
	if hasSub && sub != idToken.Claims["sub"] {
		report(r, checkLogoutTokenSub, Failure, "sub is %s, the ID token's is %s", compactJSON(sub), compactJSON(idToken.Claims["sub"]))
	}
	if hasSid && sid != idToken.Claims["sid"] {
		report(r, checkLogoutTokenSid, Failure, "sid is %s, the ID token's is %s", compactJSON(sid), compactJSON(idToken.Claims["sid"]))
	}
	if _, present := token.Claims["nonce"]; present {
		report(r, checkLogoutTokenNonce, Failure, "the logout token has a nonce, which Back-Channel Logout 1.0 §2.4 forbids")
	}
	if !hasSub && !hasSid {
		report(r, checkLogoutTokenSubOrSid, Failure, "the logout token has neither sub nor sid")
	}
}

// oidcc-frontchannel-rp-initiated-logout: logging out makes the browser
// load the frontchannel_logout_uri with iss and sid, then redirects with
// state.
func runFrontchannelLogout(m *moduleRun) {
	m.requireBrowser("front-channel logout, whose iframes only a browser loads,")
	c, f := m.loginForLogout(map[string]any{
		"frontchannel_logout_uri":              m.base + "/frontchannel_logout",
		"frontchannel_logout_session_required": true,
	})
	state := randomValue(10)
	params := url.Values{"id_token_hint": {f.idToken().Raw}, "post_logout_redirect_uri": {m.base + "/post_logout_redirect"}, "state": {state}}
	nav := m.endSession(params, true)

	notification := m.inbox.next(m.ctx, logoutWait, eventFrontchannelLogout)
	if notification == nil {
		report(m, checkFrontchannelReceived, Fatal, "the browser loaded no frontchannel_logout_uri: %s", nav.describe())
	}
	checkFrontchannelRequest(m, notification.Query, m.config.str("issuer"), f.idToken())
	m.checkPostLogoutRedirect(state, nav)
	m.checkSessionEnded(c)
}

func checkFrontchannelRequest(r recorder, query url.Values, issuer string, idToken *jwtToken) {
	if query.Get("iss") != issuer {
		report(r, checkFrontchannelIss, Failure, "iss is %q, expected the issuer %q", query.Get("iss"), issuer)
	}
	if sid := idToken.str("sid"); sid == "" || query.Get("sid") != sid {
		report(r, checkFrontchannelSid, Failure, "sid is %q, the ID token's is %q", query.Get("sid"), sid)
	}
	var extra []string
	for name := range query {
		if name != "iss" && name != "sid" {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		report(r, checkFrontchannelParameters, Warning, "the front-channel request has other parameters: %s", strings.Join(extra, ", "))
	}
}
