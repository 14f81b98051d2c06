package conformance

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The modules of the Basic, Implicit and Hybrid OP plans (and their
// form_post copies). Each follows the official suite's module of the same
// name; what it sends and requires is in the module's doc comment.

var (
	checkIDTokenAlgRS256 = defineCheck("CheckIdTokenSignatureAlgorithmIsRS256",
		"the ID token is signed with RS256, the default or registered alg")
	checkIDTokenHasKid = defineCheck("CheckForKeyIdInIdTokenHeader",
		"the ID token's header has a kid")
	checkIDTokenUnsigned = defineCheck("EnsureIdTokenIsUnsigned",
		"with id_token_signed_response_alg none registered, the ID token has alg none and no signature")
	checkReuseAllowed = defineCheck("ServerAllowedReusingAuthorizationCode",
		"a code used once is rejected the second time (RFC 6749 §4.1.2)")
	checkUnexpectedRedirect = defineCheck("AuthorizationEndpointRedirectedBackUnexpectedly",
		"the provider shows an error page instead of redirecting where it must not")
	checkLoginShown = defineCheck("CheckLoginPageShown",
		"the provider asks the person to log in again")
	checkNoLoginShown = defineCheck("CheckLoginPageNotShown",
		"the provider does not ask the person to log in while the session is valid")
	checkPromptNoneSilent = defineCheck("CheckNoUserInteractionForPromptNone",
		"with prompt=none the provider shows neither a login nor a consent page (OpenID Connect Core §3.1.2.1)")
	checkAuthTimeLater = defineCheck("CheckSecondIdTokenAuthTimeIsLaterIfPresent",
		"after a new login, auth_time is later than the first ID token's")
	checkAuthTimePresentMaxAge = defineCheck("CheckIdTokenAuthTimeClaimPresentDueToMaxAge",
		"an ID token issued for a request with max_age has auth_time (OpenID Connect Core §3.1.2.1)")
	checkAuthTimeRecent = defineCheck("CheckIdTokenAuthTimeIsRecentIfPresent",
		"after max_age=1 forced a login, auth_time is recent")
	checkAuthTimeSame = defineCheck("CheckIdTokenAuthTimeClaimsSameIfPresent",
		"without a new login, auth_time stays the same")
	checkSubSame = defineCheck("CheckIdTokenSubConsistentForSecondAuthorization",
		"the second authorization's ID token has the first one's sub")
	checkACRAgainstValues = defineCheck("ValidateIdTokenACRClaimAgainstAcrValuesRequest",
		"the ID token has an acr that is one of the requested acr_values")
	checkRefreshAdvertised = defineCheck("EnsureServerConfigurationSupportsRefreshToken",
		"grant_types_supported lists refresh_token exactly when refresh tokens are issued")
	checkRequestObjectRedirect = defineCheck("EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri",
		"the provider does not answer a request object it ignored at a redirect URI it did not check")
)

func init() {
	for _, spec := range []*moduleSpec{
		{Name: "oidcc-server", run: runServer},
		{Name: "oidcc-server-client-secret-post", run: runServerClientSecretPost},
		{Name: "oidcc-response-type-missing", run: runResponseTypeMissing, browser: true},
		{Name: "oidcc-idtoken-signature", run: runIDTokenSignature, dynamicOnly: true},
		{Name: "oidcc-idtoken-unsigned", run: runIDTokenUnsigned, dynamicOnly: true},
		{Name: "oidcc-userinfo-get", run: userinfoModule(userinfoGet)},
		{Name: "oidcc-userinfo-post-header", run: userinfoModule(userinfoPostHeader)},
		{Name: "oidcc-userinfo-post-body", run: userinfoModule(userinfoPostBody)},
		{Name: "oidcc-ensure-request-without-nonce-succeeds-for-code-flow", run: runWithoutNonceSucceeds},
		{Name: "oidcc-ensure-request-without-nonce-fails", run: runWithoutNonceFails, browser: true},
		{Name: "oidcc-scope-profile", run: scopeModule("openid profile", false)},
		{Name: "oidcc-scope-email", run: scopeModule("openid email", false)},
		{Name: "oidcc-scope-address", run: scopeModule("openid address", false)},
		{Name: "oidcc-scope-phone", run: scopeModule("openid phone", false)},
		{Name: "oidcc-scope-all", run: scopeModule("openid email phone address profile", false)},
		{Name: "oidcc-alternate-happy-flow", run: scopeModule("email openid", true)},
		{Name: "oidcc-display-page", run: parameterModule("display", "page")},
		{Name: "oidcc-display-popup", run: parameterModule("display", "popup")},
		{Name: "oidcc-ensure-request-with-unknown-parameter-succeeds", run: parameterModule("extra", "foobar")},
		{Name: "oidcc-ui-locales", run: parameterModule("ui_locales", "se")},
		{Name: "oidcc-claims-locales", run: parameterModule("claims_locales", "se")},
		{Name: "oidcc-login-hint", run: runLoginHint},
		{Name: "oidcc-ensure-request-with-acr-values-succeeds", run: runACRValues},
		{Name: "oidcc-prompt-login", run: runPromptLogin, browser: true},
		{Name: "oidcc-max-age-1", run: runMaxAge1, browser: true},
		{Name: "oidcc-max-age-10000", run: runMaxAge10000},
		{Name: "oidcc-prompt-none-logged-in", run: secondAuthorizationModule(false)},
		{Name: "oidcc-id-token-hint", run: secondAuthorizationModule(true)},
		{Name: "oidcc-prompt-none-not-logged-in", run: runPromptNoneNotLoggedIn},
		{Name: "oidcc-codereuse", run: codeReuseModule(false)},
		{Name: "oidcc-codereuse-30seconds", run: codeReuseModule(true)},
		{Name: "oidcc-ensure-registered-redirect-uri", run: runRegisteredRedirectURI, browser: true},
		{Name: "oidcc-ensure-post-request-succeeds", run: runPostRequest},
		{Name: "oidcc-claims-essential", run: runClaimsEssential},
		{Name: "oidcc-refresh-token", run: runRefreshToken},
		{Name: "oidcc-ensure-request-with-valid-pkce-succeeds", run: runValidPKCE},
	} {
		defineModule(spec)
	}
}

// setupFor runs the common configuration steps and checks that discovery
// advertises the client authentication method under test.
func (m *moduleRun) setupFor(authMethod string) {
	m.setup()
	checkClientAuthAdvertised(m, m.config, authMethod)
}

// oidcc-server: the happy path, with checks on code strength, expires_in
// and claims that were not requested. It also records EXTRA findings on how the
// token endpoint responds to a wrong client secret.
func runServer(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c, f := m.standardFlow(flowOptions{serverChecks: true})
	if f.tokenForm != nil && c.AuthMethod == "client_secret_basic" {
		wrong := *c
		wrong.Secret = c.Secret + "x"
		checkInvalidClientChallengeExtra(m, m.callToken(&wrong, f.tokenForm, tokenCallOptions{}))
	}
}

// checkInvalidClientChallengeExtra records an EXTRA finding when a 401
// response to HTTP Basic client authentication lacks WWW-Authenticate.
func checkInvalidClientChallengeExtra(r recorder, t *tokenResponse) {
	if t.Err == nil && t.Status == http.StatusUnauthorized && t.Header.Get("WWW-Authenticate") == "" {
		report(r, checkTokenWWWAuthenticateExtra, Extra, "the token endpoint answered a wrong Basic client secret with 401 but no WWW-Authenticate")
	}
}

// oidcc-server-client-secret-post: the happy path with client_secret_post.
func runServerClientSecretPost(m *moduleRun) {
	m.setupFor("client_secret_post")
	c := m.newClient(clientOptions{static: "client_secret_post", authMethod: "client_secret_post"})
	m.runFlow(c, m.newAuthRequest(c), flowOptions{})
}

// oidcc-response-type-missing: without response_type the provider must
// redirect with invalid_request or unsupported_response_type, or show an
// error page (screenshot).
func runResponseTypeMissing(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.remove("response_type")
	res := m.authorize(req)
	if res.callback == nil {
		m.expectErrorPage(0, res.nav, "error page for a request without response_type")
		return
	}
	params := m.anyModeParameters(res)
	checkAuthorizationError(m, params, res.callback, res.fragment, m.config.str("issuer"), req.get("state"))
	if e := params.Get("error"); e != "invalid_request" && e != "unsupported_response_type" {
		report(m, checkErrorResponseTypeMissing, Failure, "error is %q, expected invalid_request or unsupported_response_type", e)
	}
}

// anyModeParameters reads an error response from wherever it arrived: the
// body of a POST, the fragment, or the query.
func (m *moduleRun) anyModeParameters(res *authResult) url.Values {
	cb := res.callback
	if cb.Method == http.MethodPost && cb.Form != nil {
		return cb.Form
	}
	if res.fragment == nil && cb.Method == http.MethodGet && len(cb.Query) == 0 {
		if posted := m.inbox.next(m.ctx, callbackWait, eventFragment); posted != nil {
			res.fragment, _ = url.ParseQuery(posted.Fragment)
		}
	}
	if len(res.fragment) > 0 {
		return res.fragment
	}
	return cb.Query
}

// expectErrorPage checks that, after the user agent stopped on a page, no
// request reaches the callback server within --no-redirect-wait, and then
// takes the screenshot for review. since is the inbox's event count before
// the request.
func (m *moduleRun) expectErrorPage(since int, nav *navigation, what string) {
	if nav.ExternalRedirect != "" {
		report(m, checkUnexpectedRedirect, Failure, "the provider redirected to %s", redactURL(nav.ExternalRedirect))
	}
	m.sleep(m.h.opts.NoRedirectWait)
	for _, e := range m.inbox.since(since) {
		if e.Kind == eventCallback || e.Kind == eventPostLogoutRedirect || e.Kind == eventOther {
			report(m, checkUnexpectedRedirect, Failure, "the provider redirected to %s instead of showing a page", e.Path)
		}
	}
	m.screenshot("page", what)
}

// oidcc-idtoken-signature: the ID token is signed with RS256 and has a kid.
func runIDTokenSignature(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	_, f := m.standardFlow(flowOptions{})
	checkRS256WithKid(m, f.idToken())
}

func checkRS256WithKid(r recorder, token *jwtToken) {
	if token.alg() != "RS256" {
		report(r, checkIDTokenAlgRS256, Failure, "the ID token's alg is %q, expected RS256", token.alg())
	}
	if token.kid() == "" {
		report(r, checkIDTokenHasKid, Failure, "the ID token's header has no kid")
	}
}

// oidcc-idtoken-unsigned: registered with id_token_signed_response_alg
// none, the ID token has alg none. Skipped when discovery does not list
// none.
func runIDTokenUnsigned(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	if !m.config.lists("id_token_signing_alg_values_supported", "none") {
		m.skip("id_token_signing_alg_values_supported does not list none, so unsigned ID tokens cannot be tested")
	}
	c := m.newClient(clientOptions{metadata: map[string]any{"id_token_signed_response_alg": "none"}})
	req := m.newAuthRequest(c)
	res := m.authorize(req)
	m.requireCallback(res)
	params := m.responseParameters(res)
	checkSuccessParameters(m, m.variant, params, m.config.str("issuer"), req.get("state"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {params.Get("code")}, "redirect_uri": {c.redirectURI()}}
	t := m.callToken(c, form, tokenCallOptions{})
	checkTokenSuccess(m, t, Info)
	token := extractIDToken(m, checkExtractIDTokenFromToken, t.str("id_token"))
	checkUnsignedIDToken(m, token)
	expect := m.idTokenExpectations(c, req.get("nonce"))
	checkIDTokenTimesAndAudience(m, token, expect)
	checkIDTokenNonceValue(m, token, expect.Nonce)
	checkSubject(m, checkIDTokenSubject, token.Claims["sub"])
}

func checkUnsignedIDToken(r recorder, token *jwtToken) {
	parts := strings.Split(token.Raw, ".")
	if token.alg() != "none" || len(parts) != 3 || parts[2] != "" {
		report(r, checkIDTokenUnsigned, Failure, "the ID token has alg %q and a signature of %d characters, expected alg none and none", token.alg(), len(parts[len(parts)-1]))
	}
}

// oidcc-userinfo-get, -post-header and -post-body: userinfo accepts the
// access token sent in the Authorization header of a GET or POST, or in a
// form body, where a non-2xx response is only a warning.
func userinfoModule(style userinfoStyle) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		_, f := m.standardFlow(flowOptions{})
		result := m.callUserinfo(style, f.accessToken, f.tokenType)
		if style == userinfoPostBody && (result.Err != nil || result.Status < 200 || result.Status > 299) {
			report(m, checkUserinfoBodyToken, Warning, "userinfo answered the access token in the body with status %d", result.Status)
			return
		}
		checkUserinfoResponse(m, result, f.frontSub(), f.tokenSub(), m.now())
		if style == userinfoGet {
			missing := m.callUserinfo(userinfoGet, "", "")
			invalid := m.callUserinfo(userinfoGet, "invalid-"+randomString(20), "Bearer")
			checkUnauthorizedUserinfoExtra(m, missing, invalid)
		}
	}
}

// oidcc-ensure-request-without-nonce-succeeds-for-code-flow: a code flow
// request without nonce gets a code. The token endpoint is not called.
func runWithoutNonceSucceeds(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.remove("nonce")
	m.runFlow(c, req, flowOptions{noTokenRequest: true})
}

// oidcc-ensure-request-without-nonce-fails: a request that returns an ID
// token from the authorization endpoint needs a nonce (OpenID Connect Core
// §3.2.2.1). The provider redirects with invalid_request or shows an
// error page.
func runWithoutNonceFails(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.remove("nonce")
	res := m.authorize(req)
	if res.callback == nil {
		m.expectErrorPage(0, res.nav, "error page for a request without nonce")
		return
	}
	params := m.responseParameters(res)
	checkAuthorizationError(m, params, res.callback, res.fragment, m.config.str("issuer"), req.get("state"))
	if params.Get("error") != "invalid_request" {
		report(m, checkErrorInvalidRequest, Failure, "error is %q, expected invalid_request", params.Get("error"))
	}
}

// scopeModule runs the oidcc-scope-* modules and oidcc-alternate-happy-flow:
// the claims of the requested scopes must come back, in userinfo when an
// access token is issued and in the ID token otherwise (warnings only).
// Skipped when scopes_supported lacks a requested scope.
func scopeModule(scope string, alternate bool) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		scopes := scopeList(scope)
		supported, ok := m.config.stringList("scopes_supported")
		if !ok {
			m.skip("discovery has no scopes_supported array, so the scope tests cannot tell what is supported")
		}
		for _, s := range scopes {
			if !slices.Contains(supported, s) {
				m.skip("scopes_supported %v does not list %s", supported, s)
			}
		}
		c := m.newClient(clientOptions{})
		c.Scope = scope
		req := m.newAuthRequest(c)
		req.reverse = alternate
		f := m.runFlow(c, req, flowOptions{})
		m.checkReturnedClaims(f, scopes, slices.Contains(scopes, "email"))
	}
}

// checkReturnedClaims checks the claims of the requested scopes, and with
// email the two extra warnings of oidcc-scope-email.
func (m *moduleRun) checkReturnedClaims(f *flowResult, scopes []string, emailChecks bool) {
	var userinfo map[string]any
	if f.accessToken != "" {
		userinfo = checkUserinfoResponse(m, m.callUserinfo(userinfoGet, f.accessToken, f.tokenType), f.frontSub(), f.tokenSub(), m.now())
		checkScopeClaims(m, checkScopeClaimsUserinfo, userinfo, scopes, "userinfo")
	} else {
		checkScopeClaims(m, checkScopeClaimsIDToken, f.idToken().Claims, scopes, "the ID token")
	}
	if !emailChecks || slices.Contains(scopes, "profile") {
		return
	}
	if _, present := f.idToken().Claims["email"]; present && f.accessToken != "" {
		report(m, checkEmailNotInIDToken, Warning, "the ID token has email although an access token was issued")
	}
	if _, present := f.idToken().Claims["name"]; present {
		report(m, checkIDTokenNoName, Warning, "the ID token has name, which scope email does not ask for")
	}
	if _, present := userinfo["name"]; present {
		report(m, checkNameNotInUserinfo, Warning, "userinfo has name, which scope email does not ask for")
	}
}

// parameterModule runs the modules that add one parameter the provider
// must not fail on.
func parameterModule(name, value string) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		c := m.newClient(clientOptions{})
		req := m.newAuthRequest(c)
		req.set(name, value)
		m.runFlow(c, req, flowOptions{})
	}
}

// oidcc-login-hint: login_hint must not cause an error.
func runLoginHint(m *moduleRun) {
	hint := m.h.opts.LoginHint
	if hint == "" {
		issuer, _ := url.Parse(m.h.opts.Issuer)
		hint = "buffy@" + issuer.Hostname()
	}
	parameterModule("login_hint", hint)(m)
}

// oidcc-ensure-request-with-acr-values-succeeds: acr_values must not cause
// an error, and the ID token should carry one of the requested values.
func runACRValues(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	values, _ := m.config.stringList("acr_values_supported")
	requested := strings.Join(values, " ")
	if requested == "" {
		requested = "1 2"
	}
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.set("acr_values", requested)
	f := m.runFlow(c, req, flowOptions{})
	checkACRValue(m, f.idToken(), strings.Fields(requested))
}

func checkACRValue(r recorder, token *jwtToken, requested []string) {
	acr, present := token.Claims["acr"].(string)
	switch {
	case !present:
		report(r, checkACRAgainstValues, Warning, "the ID token has no acr, although acr_values was sent")
	case !slices.Contains(requested, acr):
		report(r, checkACRAgainstValues, Warning, "acr %q is not one of the requested %v", acr, requested)
	}
}

// authTime returns the ID token's auth_time and whether it has one.
func authTime(token *jwtToken) (float64, bool) { return token.number("auth_time") }

// oidcc-prompt-login: a second authorization with prompt=login must show
// the login page again (screenshot), and a later auth_time if both tokens
// have one.
func runPromptLogin(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c, first := m.standardFlow(flowOptions{})
	m.sleep(m.h.opts.waits.promptLogin)
	req := m.newAuthRequest(c)
	req.set("prompt", "login")
	second := m.runFlowCapturingLogin(c, req)
	if second.auth.nav.Logins == 0 {
		report(m, checkLoginShown, Failure, "the provider did not show the login page for prompt=login")
	}
	checkAuthTimeLaterIfPresent(m, first.idToken(), second.idToken())
	m.saveScreenshot("login", "the login page shown for prompt=login", second.auth.nav.LoginScreenshot)
}

func (m *moduleRun) runFlowCapturingLogin(c *client, req *authRequest) *flowResult {
	endpoint := m.config.str("authorization_endpoint")
	nav, err := m.agent.navigate(m.ctx, endpoint+"?"+req.encode(), navigateOptions{captureLogin: true})
	if err != nil {
		report(m, checkExpectRedirect, Fatal, "the user agent failed on the way to the redirect URI: %v", err)
	}
	res := &authResult{nav: nav}
	res.callback = m.inbox.next(m.ctx, callbackWait, eventCallback)
	if res.callback != nil && res.callback.Method == http.MethodGet && m.expectsFragment() {
		if posted := m.inbox.next(m.ctx, callbackWait, eventFragment); posted != nil {
			res.fragment, _ = url.ParseQuery(posted.Fragment)
		}
	}
	m.requireCallback(res)
	return m.completeFlow(c, req, res, flowOptions{})
}

func checkAuthTimeLaterIfPresent(r recorder, first, second *jwtToken) {
	a, okA := authTime(first)
	b, okB := authTime(second)
	if okA && okB && b <= a {
		report(r, checkAuthTimeLater, Failure, "the second auth_time %v is not later than the first %v", b, a)
	}
}

// oidcc-max-age-1: after 2 seconds, max_age=1 must force a login
// (screenshot), and the second ID token must have a later, recent
// auth_time.
func runMaxAge1(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c, first := m.standardFlow(flowOptions{})
	m.sleep(m.h.opts.waits.maxAge1)
	req := m.newAuthRequest(c)
	req.set("max_age", "1")
	second := m.runFlowCapturingLogin(c, req)
	if second.auth.nav.Logins == 0 {
		report(m, checkLoginShown, Failure, "the provider did not ask for a login for max_age=1 after 2 seconds")
	}
	token := second.idToken()
	if _, ok := authTime(token); !ok {
		report(m, checkAuthTimePresentMaxAge, Failure, "the ID token of a request with max_age has no auth_time")
	}
	checkAuthTimeLaterIfPresent(m, first.idToken(), token)
	if at, ok := authTime(token); ok && unixTime(at).Before(m.now().Add(-clockSkew-time.Second)) {
		report(m, checkAuthTimeRecent, Failure, "auth_time %s is not recent, although max_age=1 forced a login", unixTime(at).Format(time.RFC3339))
	}
	m.saveScreenshot("login", "the login page shown for max_age=1", second.auth.nav.LoginScreenshot)
}

// oidcc-max-age-10000: max_age=15000 then max_age=10000 in one session
// must not ask for a second login, and both ID tokens have the same
// auth_time and sub.
func runMaxAge10000(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.set("max_age", "15000")
	first := m.runFlow(c, req, flowOptions{})
	if _, ok := authTime(first.idToken()); !ok {
		report(m, checkAuthTimePresentMaxAge, Failure, "the first ID token of a request with max_age has no auth_time")
	}
	req = m.newAuthRequest(c)
	req.set("max_age", "10000")
	second := m.runFlow(c, req, flowOptions{})
	if second.auth.nav.Logins > 0 {
		report(m, checkNoLoginShown, Failure, "the provider asked for a login again within max_age=10000")
	}
	if _, ok := authTime(second.idToken()); !ok {
		report(m, checkAuthTimePresentMaxAge, Failure, "the second ID token of a request with max_age has no auth_time")
	}
	checkSameAuthentication(m, first.idToken(), second.idToken())
}

func checkSameAuthentication(r recorder, first, second *jwtToken) {
	if first.str("sub") != second.str("sub") {
		report(r, checkSubSame, Failure, "sub changed from %q to %q", first.str("sub"), second.str("sub"))
	}
	a, okA := authTime(first)
	b, okB := authTime(second)
	if okA && okB && a != b {
		report(r, checkAuthTimeSame, Failure, "auth_time changed from %v to %v without a new login", a, b)
	}
}

// secondAuthorizationModule runs oidcc-prompt-none-logged-in and, with
// hint, oidcc-id-token-hint: after a normal flow, prompt=none must succeed
// silently for the same person and authentication.
func secondAuthorizationModule(hint bool) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		c, first := m.standardFlow(flowOptions{})
		req := m.newAuthRequest(c)
		req.set("prompt", "none")
		if hint {
			req.set("id_token_hint", first.idToken().Raw)
		}
		second := m.runFlow(c, req, flowOptions{})
		if nav := second.auth.nav; nav.Logins > 0 || nav.Consents > 0 {
			report(m, checkPromptNoneSilent, Failure, "the provider showed %d login and %d consent pages for prompt=none, which the user agent submitted", nav.Logins, nav.Consents)
		}
		checkSameAuthentication(m, first.idToken(), second.idToken())
	}
}

// oidcc-prompt-none-not-logged-in: prompt=none without a session must
// redirect with an error that requires a user interface, and a state of
// 128 characters must survive.
func runPromptNoneNotLoggedIn(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{})
	if err := m.agent.clearCookies(m.ctx); err != nil {
		m.skip("clearing the cookies failed: %v", err)
	}
	req := m.newAuthRequest(c)
	req.set("state", randomValue(128))
	req.set("prompt", "none")
	res := m.authorize(req)
	m.requireCallback(res)
	params := m.responseParameters(res)
	checkAuthorizationError(m, params, res.callback, res.fragment, m.config.str("issuer"), req.get("state"))
	checkUserInterfaceError(m, params.Get("error"))
}

var userInterfaceErrors = []string{"interaction_required", "login_required", "account_selection_required", "consent_required"}

func checkUserInterfaceError(r recorder, errorCode string) {
	if !slices.Contains(userInterfaceErrors, errorCode) {
		report(r, checkErrorUserInterface, Failure, "error is %q, expected one of %s", errorCode, strings.Join(userInterfaceErrors, ", "))
	}
}

// codeReuseModule runs oidcc-codereuse and, after 30 seconds,
// oidcc-codereuse-30seconds: a second exchange of a code must fail with
// invalid_grant. Accepting it is a warning at once and a failure after 30
// seconds, when the first access token should also have been revoked.
func codeReuseModule(late bool) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		c, f := m.standardFlow(flowOptions{})
		if late {
			m.sleep(m.h.opts.waits.codeReuse)
		}
		t := m.callToken(c, f.tokenForm, tokenCallOptions{})
		if t.Err == nil && t.Status == http.StatusOK {
			severity := Warning
			if late {
				severity = Failure
			}
			report(m, checkReuseAllowed, severity, "the token endpoint accepted the code a second time")
			return
		}
		checkTokenError(m, t, "invalid_grant")
		if !late {
			return
		}
		result := m.callUserinfo(userinfoGet, f.accessToken, f.tokenType)
		if result.Err == nil && (result.Status < 400 || result.Status > 499) {
			report(m, checkTokenRevokedAfterReuse, Warning, "the access token of the reused code still works at userinfo (status %d)", result.Status)
		}
	}
}

// oidcc-ensure-registered-redirect-uri: a redirect_uri with an extra path
// segment is not registered, so the provider must show an error page and
// redirect nowhere.
func runRegisteredRedirectURI(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.set("redirect_uri", c.redirectURI()+"/"+randomString(10))
	res := m.authorize(req)
	m.expectErrorPage(0, res.nav, "error page for an unregistered redirect_uri")
}

// oidcc-ensure-post-request-succeeds: the authorization request sent as a
// form POST must work; no callback within 30 seconds is a warning.
func runPostRequest(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.post = true
	res := m.authorize(req)
	if res.callback == nil {
		res.callback = m.inbox.next(m.ctx, m.h.opts.waits.postRequest, eventCallback)
		if res.callback != nil && m.expectsFragment() {
			if posted := m.inbox.next(m.ctx, callbackWait, eventFragment); posted != nil {
				res.fragment, _ = url.ParseQuery(posted.Fragment)
			}
		}
	}
	if res.callback == nil {
		report(m, checkExpectRedirect, Warning, "no response reached the redirect URI within %s of the POST: %s", m.h.opts.waits.postRequest, res.nav.describe())
		return
	}
	m.completeFlow(c, req, res, flowOptions{})
}

// oidcc-claims-essential: name requested as an essential claim for
// userinfo (or, without an access token, the ID token) should come back
// there and only there.
func runClaimsEssential(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	target := "userinfo"
	if m.variant.ResponseType == "id_token" {
		target = "id_token"
	}
	claims, _ := json.Marshal(map[string]any{target: map[string]any{"name": map[string]any{"essential": true}}})
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.set("claims", string(claims))
	f := m.runFlow(c, req, flowOptions{})
	if target == "id_token" {
		if _, present := f.idToken().Claims["name"]; !present {
			report(m, checkIDTokenHasName, Warning, "the ID token has no name, although it was requested as essential")
		}
		checkScopeClaims(m, checkScopeClaimsIDToken, f.idToken().Claims, []string{"openid"}, "the ID token")
		return
	}
	userinfo := checkUserinfoResponse(m, m.callUserinfo(userinfoGet, f.accessToken, f.tokenType), f.frontSub(), f.tokenSub(), m.now())
	if _, present := userinfo["name"]; !present {
		report(m, checkUserinfoHasName, Warning, "userinfo has no name, although it was requested as essential")
	}
	for _, token := range []*jwtToken{f.frontIDToken, f.tokenIDToken} {
		if token == nil {
			continue
		}
		if _, present := token.Claims["name"]; present {
			report(m, checkIDTokenNoName, Warning, "the ID token has name, which was requested for userinfo only")
		}
	}
	checkScopeClaims(m, checkScopeClaimsUserinfo, userinfo, []string{"openid"}, "userinfo")
}

// oidcc-ensure-request-with-valid-pkce-succeeds: an S256 code challenge
// must not break the flow (RFC 7636).
func runValidPKCE(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	verifier := randomString(64)
	sum := sha256.Sum256([]byte(verifier))
	c := m.newClient(clientOptions{})
	req := m.newAuthRequest(c)
	req.set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	req.set("code_challenge_method", "S256")
	m.runFlow(c, req, flowOptions{tokenForm: url.Values{"code_verifier": {verifier}}})
}

// oidcc-refresh-token: two clients get refresh tokens; each refresh must
// pass the refresh checks, and client 2's refresh token must not work for
// client 1. Skipped when no refresh token is issued.
func runRefreshToken(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	first := m.newClient(clientOptions{refresh: true})
	second := m.newClient(clientOptions{static: "client2", refresh: true})
	scope := "openid"
	if m.config.lists("scopes_supported", "offline_access") {
		scope = "openid offline_access"
	}
	first.Scope, second.Scope = scope, scope

	f := m.refreshFlow(first, true)
	m.refreshSteps(first, f, true)
	g := m.refreshFlow(second, false)
	m.refreshSteps(second, g, false)

	t := m.callToken(first, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {g.refreshToken}}, tokenCallOptions{})
	checkTokenError(m, t, "invalid_grant")
}

// refreshFlow runs a flow that requests a refresh token, with
// prompt=consent when offline_access is requested (OpenID Connect Core
// §11). It skips the module when no refresh token comes back.
func (m *moduleRun) refreshFlow(c *client, firstClient bool) *flowResult {
	req := m.newAuthRequest(c)
	if !firstClient {
		req.set("nonce", randomValue(43))
	}
	if hasWord(c.Scope, "offline_access") {
		req.set("prompt", "consent")
	}
	f := m.runFlow(c, req, flowOptions{})
	advertised := m.config.lists("grant_types_supported", "refresh_token")
	if f.refreshToken == "" {
		if advertised {
			report(m, checkRefreshAdvertised, Warning, "grant_types_supported lists refresh_token, but none was issued")
		}
		m.skip("refresh tokens cannot be tested: no refresh token was issued")
	}
	if !advertised {
		// An absent grant_types_supported means ["authorization_code",
		// "implicit"] (OpenID Connect Discovery 1.0 §3), without
		// refresh_token.
		report(m, checkRefreshAdvertised, Warning, "a refresh token was issued, but grant_types_supported, whose default is authorization_code and implicit, does not list refresh_token")
	}
	if !printableASCII(f.refreshToken) {
		report(m, checkRefreshTokenCharacters, Failure, "the refresh token has characters outside %%x20-7E")
	}
	return f
}

// refreshSteps refreshes once after a second's wait, as the official
// suite's RefreshTokenRequestSteps do, and calls userinfo with the new
// access token. The second client sends no scope.
func (m *moduleRun) refreshSteps(c *client, f *flowResult, sendScope bool) *tokenResponse {
	m.sleep(m.h.opts.waits.beforeRefresh)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f.refreshToken}}
	if sendScope {
		form.Set("scope", c.Scope)
	}
	t := m.callToken(c, form, tokenCallOptions{})
	checkRefreshResponse(m, t)
	if raw := t.str("id_token"); raw != "" {
		token := extractIDToken(m, checkExtractIDTokenFromToken, raw)
		expect := m.idTokenExpectations(c, "")
		expect.SkipNonce = true
		checkIDToken(m, token, expect)
		compareIDTokenClaims(m, f.idToken(), token)
	}
	if t.str("access_token") != "" {
		m.callProtectedResource(t.str("access_token"), t.str("token_type"))
	}
	return t
}
