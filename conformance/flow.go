package conformance

import (
	"net/url"
)

// flowOptions change the standard flow for a module.
type flowOptions struct {
	// serverChecks adds oidcc-server's checks: code strength, a warning for
	// a missing expires_in, and warnings for claims that were not requested.
	serverChecks bool
	// noTokenRequest stops after the authorization response.
	noTokenRequest bool
	// tokenForm adds parameters to the code exchange, such as code_verifier.
	tokenForm url.Values
	// assertionAudience replaces the token endpoint as the aud of a
	// private_key_jwt assertion.
	assertionAudience string
}

// flowResult is the output of a successful standard flow.
type flowResult struct {
	req    *authRequest
	auth   *authResult
	params url.Values
	code   string

	frontIDToken     *jwtToken
	frontAccessToken string
	frontTokenType   string

	token        *tokenResponse
	tokenForm    url.Values
	tokenIDToken *jwtToken
	// accessToken is the token endpoint's access token, or the
	// authorization endpoint's when no code was exchanged.
	accessToken  string
	tokenType    string
	refreshToken string
}

// idToken returns the token endpoint's ID token, or the authorization
// endpoint's.
func (f *flowResult) idToken() *jwtToken {
	if f.tokenIDToken != nil {
		return f.tokenIDToken
	}
	return f.frontIDToken
}

func (f *flowResult) frontSub() string {
	if f.frontIDToken == nil {
		return ""
	}
	return f.frontIDToken.str("sub")
}

func (f *flowResult) tokenSub() string {
	if f.tokenIDToken == nil {
		return ""
	}
	return f.tokenIDToken.str("sub")
}

func (m *moduleRun) idTokenExpectations(c *client, nonce string) idTokenExpectations {
	return idTokenExpectations{
		Issuer: m.config.str("issuer"), ClientID: c.ID, ClientSecret: c.Secret,
		Keys: m.keys, Nonce: nonce, Now: m.now(),
	}
}

// runFlow sends req and completes the flow the official suite's
// AbstractOIDCCServerTest runs: authorization response checks, ID token
// checks, code exchange, and userinfo with each access token.
func (m *moduleRun) runFlow(c *client, req *authRequest, options flowOptions) *flowResult {
	res := m.authorize(req)
	m.requireCallback(res)
	return m.completeFlow(c, req, res, options)
}

// completeFlow checks an authorization response that reached the redirect
// URI and completes the flow.
func (m *moduleRun) completeFlow(c *client, req *authRequest, res *authResult, options flowOptions) *flowResult {
	params := m.responseParameters(res)
	redirectURI := req.get("redirect_uri")
	if redirectURI == "" {
		redirectURI = c.redirectURI()
	}
	checkRegisteredQuery(m, redirectURI, res.callback)
	checkSuccessParameters(m, m.variant, params, m.config.str("issuer"), req.get("state"))

	f := &flowResult{req: req, auth: res, params: params, code: params.Get("code")}
	expect := m.idTokenExpectations(c, req.get("nonce"))
	scopes := scopeList(req.get("scope"))
	if m.variant.hasToken() {
		f.frontAccessToken, f.frontTokenType = params.Get("access_token"), params.Get("token_type")
		f.accessToken, f.tokenType = f.frontAccessToken, f.frontTokenType
	}
	if m.variant.hasIDToken() {
		token := extractIDToken(m, checkExtractIDTokenFromAuthorization, params.Get("id_token"))
		checkIDToken(m, token, expect)
		if m.variant.hasCode() {
			checkHashClaim(m, token, "c_hash", f.code, true)
		}
		if m.variant.hasToken() {
			checkHashClaim(m, token, "at_hash", f.frontAccessToken, true)
		}
		if options.serverChecks {
			checkNoUnrequestedClaims(m, token, scopes)
		}
		f.frontIDToken = token
	}
	if m.variant.hasCode() && options.serverChecks {
		checkCodeStrength(m, f.code)
	}
	if m.variant.hasToken() {
		m.callProtectedResource(f.frontAccessToken, f.frontTokenType)
	}
	if !m.variant.hasCode() || options.noTokenRequest {
		return f
	}

	f.tokenForm = url.Values{"grant_type": {"authorization_code"}, "code": {f.code}, "redirect_uri": {redirectURI}}
	for name, values := range options.tokenForm {
		f.tokenForm[name] = values
	}
	expiresMissing := Info
	if options.serverChecks {
		expiresMissing = Warning
	}
	f.token = m.callToken(c, f.tokenForm, tokenCallOptions{assertionAudience: options.assertionAudience})
	checkTokenSuccess(m, f.token, expiresMissing)
	f.accessToken, f.tokenType, f.refreshToken = f.token.str("access_token"), f.token.str("token_type"), f.token.str("refresh_token")

	token := extractIDToken(m, checkExtractIDTokenFromToken, f.token.str("id_token"))
	checkIDToken(m, token, expect)
	checkHashClaim(m, token, "at_hash", f.accessToken, false)
	checkHashClaim(m, token, "c_hash", f.code, false)
	if options.serverChecks {
		checkNoUnrequestedClaims(m, token, scopes)
	}
	if f.frontIDToken != nil && f.frontIDToken.str("sub") != token.str("sub") {
		report(m, checkHybridSubject, Failure, "sub is %q in the authorization endpoint's ID token and %q in the token endpoint's", f.frontIDToken.str("sub"), token.str("sub"))
	}
	f.tokenIDToken = token
	m.callProtectedResource(f.accessToken, f.tokenType)
	return f
}

// newFlow registers or picks the module's main client and runs the
// standard flow.
func (m *moduleRun) standardFlow(options flowOptions) (*client, *flowResult) {
	c := m.newClient(clientOptions{})
	return c, m.runFlow(c, m.newAuthRequest(c), options)
}
