package conformance

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

// callbackWait bounds the wait for the callback after the user agent
// reached the callback server, and for the fragment its page posts.
const callbackWait = 15 * time.Second

// authRequest is an authorization request (OpenID Connect Core §3.1.2.1)
// as the official suite builds it: parameters sent in alphabetical order
// in the query of a GET.
type authRequest struct {
	client *client
	params map[string]string
	// reverse sends the parameters in reverse alphabetical order.
	reverse bool
	// post sends the parameters as a form POST.
	post bool
}

func (m *moduleRun) newAuthRequest(c *client) *authRequest {
	req := &authRequest{client: c, params: map[string]string{
		"client_id":     c.ID,
		"redirect_uri":  c.redirectURI(),
		"scope":         c.Scope,
		"state":         randomValue(10),
		"nonce":         randomValue(10),
		"response_type": m.variant.ResponseType,
	}}
	if m.variant.ResponseMode != "" {
		req.params["response_mode"] = m.variant.ResponseMode
	}
	return req
}

func (r *authRequest) get(name string) string { return r.params[name] }

func (r *authRequest) set(name, value string) { r.params[name] = value }

func (r *authRequest) remove(name string) { delete(r.params, name) }

// encode returns the parameters as a query string in the request's order.
func (r *authRequest) encode() string {
	names := make([]string, 0, len(r.params))
	for name := range r.params {
		names = append(names, name)
	}
	slices.Sort(names)
	if r.reverse {
		slices.Reverse(names)
	}
	var b strings.Builder
	for i, name := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(r.params[name]))
	}
	return b.String()
}

func (r *authRequest) form() url.Values {
	values := url.Values{}
	for name, value := range r.params {
		values.Set(name, value)
	}
	return values
}

// authResult is the outcome of an authorization request.
type authResult struct {
	nav *navigation
	// callback is the request that reached the redirect URI, nil if none.
	callback *callbackEvent
	// fragment is the fragment the callback page posted, if any.
	fragment url.Values
}

var checkExpectRedirect = defineCheck("ExpectRedirectUriHasBeenCalled",
	"the provider redirects the user agent to the redirect URI")

// authorize sends the user agent to the authorization endpoint and waits
// for the response at the redirect URI. It does not judge the response.
func (m *moduleRun) authorize(req *authRequest) *authResult {
	endpoint := m.config.str("authorization_endpoint")
	var nav *navigation
	var err error
	if req.post {
		nav, err = m.agent.postForm(m.ctx, endpoint, req.form(), navigateOptions{})
	} else {
		target := endpoint
		separator := "?"
		if strings.Contains(endpoint, "?") {
			separator = "&"
		}
		nav, err = m.agent.navigate(m.ctx, target+separator+req.encode(), navigateOptions{})
	}
	if err != nil {
		report(m, checkExpectRedirect, Fatal, "the user agent failed on the way to the redirect URI: %v", err)
	}
	if nav.LoginFailed {
		report(m, checkExpectRedirect, Fatal, "the login form showed again after signing in as %q: check the username, password and selectors (%s)", m.h.opts.Username, nav.describe())
	}
	result := &authResult{nav: nav}
	wait := 500 * time.Millisecond
	if nav.ReachedHarness {
		wait = callbackWait
	}
	result.callback = m.inbox.next(m.ctx, wait, eventCallback)
	if result.callback != nil && result.callback.Method == "GET" && m.expectsFragment() {
		if posted := m.inbox.next(m.ctx, callbackWait, eventFragment); posted != nil {
			result.fragment, _ = url.ParseQuery(posted.Fragment)
		}
	}
	return result
}

// expectsFragment reports whether responses arrive in the fragment.
func (m *moduleRun) expectsFragment() bool {
	return m.variant.ResponseMode == "" && m.variant.ResponseType != "code"
}

// requireCallback fails the module when no response reached the redirect
// URI.
func (m *moduleRun) requireCallback(res *authResult) {
	if res.callback == nil {
		report(m, checkExpectRedirect, Fatal, "no response reached the redirect URI; the user agent stopped on a page: %s", res.nav.describe())
	}
}

var (
	checkCallbackMethodPost = defineCheck("CheckCallbackHttpMethodIsPost",
		"a form_post response arrives as a POST")
	checkCallbackContentType = defineCheck("CheckCallbackContentTypeIsFormUrlEncoded",
		"a form_post response has Content-Type application/x-www-form-urlencoded, with no parameters")
	checkRejectCodeInQuery = defineCheck("RejectAuthCodeInUrlQuery",
		"a fragment or form_post response has no code in the query")
	checkRejectErrorInQuery = defineCheck("RejectErrorInUrlQuery",
		"a fragment or form_post response has no error in the query")
	checkMatchingCallbackParameters = defineCheck("CheckMatchingCallbackParameters",
		"query parameters registered in the redirect URI come back unchanged")
	checkIssInAuthorizationResponse = defineCheck("ValidateIssIfPresentInAuthorizationResponse",
		"iss, if present, equals the issuer (RFC 9207 §2)")
	checkAuthorizationEndpointError = defineCheck("CheckIfAuthorizationEndpointError",
		"the authorization response carries no error")
	checkStateInAuthorizationResponse = defineCheck("CheckStateInAuthorizationResponse",
		"state comes back exactly as sent")
	checkExtractCode = defineCheck("ExtractAuthorizationCodeFromAuthorizationResponse",
		"a response_type with code returns a non-empty code")
	checkExtractAccessToken = defineCheck("ExtractAccessTokenFromAuthorizationResponse",
		"a response_type with token returns a non-empty access_token and token_type")
	checkCodeLength = defineCheck("EnsureMinimumAuthorizationCodeLength",
		"the code is at least 128 bits (16 bytes) long")
	checkCodeEntropy = defineCheck("EnsureMinimumAuthorizationCodeEntropy",
		"the code has more than 96 bits of entropy")
)

// responseParameters returns the parameters of an authorization response
// from where the response mode puts them, after the checks on where they
// arrived (OAuth 2.0 Multiple Response Type Encoding Practices §5, Form
// Post Response Mode §2).
func (m *moduleRun) responseParameters(res *authResult) url.Values {
	cb := res.callback
	switch {
	case m.variant.ResponseMode == "form_post":
		if cb.Method != "POST" {
			report(m, checkCallbackMethodPost, Failure, "the form_post response arrived as %s", cb.Method)
		}
		if cb.ContentType != "application/x-www-form-urlencoded" {
			report(m, checkCallbackContentType, Failure, "the form_post response has Content-Type %q", cb.ContentType)
		}
		m.rejectInQuery(cb)
		if cb.Form == nil {
			return url.Values{}
		}
		return cb.Form
	case m.expectsFragment():
		m.rejectInQuery(cb)
		if res.fragment == nil {
			return url.Values{}
		}
		return res.fragment
	default:
		return cb.Query
	}
}

func (m *moduleRun) rejectInQuery(cb *callbackEvent) {
	if cb.Query.Has("code") {
		report(m, checkRejectCodeInQuery, Failure, "the redirect's query has a code, but the response mode puts it elsewhere")
	}
	if cb.Query.Has("error") {
		report(m, checkRejectErrorInQuery, Failure, "the redirect's query has error %q, but the response mode puts it elsewhere", cb.Query.Get("error"))
	}
}

// checkRegisteredQuery checks that the query of the registered redirect URI
// came back (RFC 6749 §3.1.2: the query component must be retained).
func checkRegisteredQuery(r recorder, redirectURI string, cb *callbackEvent) {
	registered, err := url.Parse(redirectURI)
	if err != nil {
		return
	}
	for name, values := range registered.Query() {
		if got := cb.Query[name]; !slices.Equal(got, values) {
			report(r, checkMatchingCallbackParameters, Failure, "the redirect URI's query parameter %s=%v came back as %v", name, values, got)
		}
	}
}

// checkSuccessParameters makes the checks of a successful authorization
// response (OpenID Connect Core §3.1.2.5, §3.2.2.5, §3.3.2.5).
func checkSuccessParameters(r recorder, v variant, params url.Values, issuer, state string) {
	checkIssParameter(r, params, issuer)
	if params.Has("error") {
		report(r, checkAuthorizationEndpointError, Fatal, "the provider returned error %q: %s", params.Get("error"), params.Get("error_description"))
		return
	}
	checkStateParameter(r, params, state, "")
	if v.hasCode() && params.Get("code") == "" {
		report(r, checkExtractCode, Fatal, "no code in the authorization response")
		return
	}
	if v.hasToken() && (params.Get("access_token") == "" || params.Get("token_type") == "") {
		report(r, checkExtractAccessToken, Fatal, "the authorization response lacks access_token or token_type")
	}
}

func checkIssParameter(r recorder, params url.Values, issuer string) {
	if params.Has("iss") && params.Get("iss") != issuer {
		report(r, checkIssInAuthorizationResponse, Failure, "iss is %q, expected the issuer %q", params.Get("iss"), issuer)
	}
}

// checkStateParameter checks state. A missing state is allowed only with
// the errors invalid_request_object and invalid_request_uri, which may be
// raised before the state inside a request object was read.
func checkStateParameter(r recorder, params url.Values, state, errorCode string) {
	if !params.Has("state") && (errorCode == "invalid_request_object" || errorCode == "invalid_request_uri") {
		return
	}
	if got := params.Get("state"); !params.Has("state") || got != state {
		report(r, checkStateInAuthorizationResponse, Failure, "state is %q, expected %q", got, state)
	}
}

// checkCodeStrength makes oidcc-server's checks on the code (RFC 6749
// §10.10).
func checkCodeStrength(r recorder, code string) {
	if len(code) < 16 {
		report(r, checkCodeLength, Failure, "the code is %d bytes long, less than 16", len(code))
	}
	if bits := shannonBits(code); bits <= 96 {
		report(r, checkCodeEntropy, Failure, "the code has about %.0f bits of entropy, not more than 96", bits)
	}
}

var (
	checkErrorPresent = defineCheck("EnsureErrorFromAuthorizationEndpointResponse",
		"an error response carries error")
	checkNoCodeInError = defineCheck("RejectAuthCodeInAuthorizationEndpointResponse",
		"an error response has no code in the query or the fragment")
	checkErrorParameters = defineCheck("CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint",
		"an error response has only error, error_description, error_uri, state, session_state and iss")
	checkErrorDescriptionCRLF = defineCheck("CheckErrorDescriptionFromAuthorizationEndpointResponseErrorContainsCRLFTAB",
		"error_description has no CR, LF or TAB")
	checkErrorDescriptionChars = defineCheck("ValidateErrorDescriptionFromAuthorizationEndpointResponseError",
		"error_description uses only the characters RFC 6749 §4.1.2.1 allows")
	checkErrorURIChars = defineCheck("ValidateErrorUriFromAuthorizationEndpointResponseError",
		"error_uri is a URL of the characters RFC 6749 §4.1.2.1 allows")
	checkErrorInvalidRequest = defineCheck("CheckErrorFromAuthorizationEndpointErrorInvalidRequest",
		"the error is invalid_request")
	checkErrorResponseTypeMissing = defineCheck("CheckErrorFromAuthorizationEndpointErrorInvalidRequestOrUnsupportedResponseType",
		"a request without response_type gets invalid_request or unsupported_response_type")
	checkErrorUserInterface = defineCheck("CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface",
		"prompt=none without a session gets interaction_required, login_required, account_selection_required or consent_required")
)

var allowedErrorParameters = []string{"error", "error_description", "error_uri", "state", "session_state", "iss"}

// checkAuthorizationError makes the generic checks of an authorization
// error response (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6).
func checkAuthorizationError(r recorder, params url.Values, cb *callbackEvent, fragment url.Values, issuer, state string) {
	checkStateParameter(r, params, state, params.Get("error"))
	checkIssParameter(r, params, issuer)
	if params.Get("error") == "" {
		report(r, checkErrorPresent, Failure, "the response has no error parameter")
	}
	if params.Has("code") || cb.Query.Has("code") || fragment.Has("code") {
		report(r, checkNoCodeInError, Failure, "the error response carries a code")
	}
	var unexpected []string
	for name := range params {
		if !slices.Contains(allowedErrorParameters, name) {
			unexpected = append(unexpected, name)
		}
	}
	if len(unexpected) > 0 {
		slices.Sort(unexpected)
		report(r, checkErrorParameters, Warning, "unexpected parameters in the error response: %s", strings.Join(unexpected, ", "))
	}
	checkErrorFields(r, params.Get("error_description"), params.Has("error_uri"), params.Get("error_uri"),
		checkErrorDescriptionCRLF, checkErrorDescriptionChars, checkErrorURIChars)
}

// checkErrorFields checks error_description and error_uri against RFC 6749
// §5.2's character sets.
func checkErrorFields(r recorder, description string, hasURI bool, uri string, crlf, descriptionChars, uriChars *Check) {
	if strings.ContainsAny(description, "\r\n\t") {
		report(r, crlf, Warning, "error_description contains CR, LF or TAB: %q", description)
	}
	if !validErrorDescription(description) {
		report(r, descriptionChars, Failure, "error_description has characters outside %%x09-0A / %%x0D / %%x20-21 / %%x23-5B / %%x5D-7E: %q", description)
	}
	if hasURI {
		if _, err := url.Parse(uri); err != nil || !validErrorURIChars(uri) {
			report(r, uriChars, Failure, "error_uri %q is not a URL of %%x21 / %%x23-5B / %%x5D-7E", uri)
		}
	}
}
