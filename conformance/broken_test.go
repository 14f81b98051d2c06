package conformance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests wrap the real Latchkey in a middleware that breaks one rule,
// and check that the module that tests the rule reports the check that
// catches it. They use the code flow wherever the rule allows.

// breakage changes the provider's behaviour. Each function may be nil.
type breakage struct {
	// request changes a request before the provider receives it.
	request func(r *http.Request)
	// answer writes the response to a request instead of the provider,
	// when it returns true.
	answer func(w http.ResponseWriter, r *http.Request) bool
	// response changes the provider's recorded response.
	response func(r *http.Request, res *httptest.ResponseRecorder)
}

// broken returns a wrap function for newTestProvider. It also adds the
// test key to the provider's JWK set, so that resign can sign tokens that
// verify.
func broken(t testing.TB, b breakage) func(issuer string, next http.Handler) http.Handler {
	return func(issuer string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if b.request != nil {
				b.request(r)
			}
			if b.answer != nil && b.answer(w, r) {
				return
			}
			res := httptest.NewRecorder()
			next.ServeHTTP(res, r)
			if r.URL.Path == "/.well-known/jwks.json" {
				addTestKey(t, res)
			}
			if b.response != nil {
				b.response(r, res)
			}
			for name, values := range res.Header() {
				w.Header()[name] = values
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(res.Code)
			_, _ = w.Write(res.Body.Bytes())
		})
	}
}

func addTestKey(t testing.TB, res *httptest.ResponseRecorder) {
	var set map[string]any
	if err := json.Unmarshal(res.Body.Bytes(), &set); err != nil {
		t.Errorf("the provider's JWK set is not JSON: %v", err)
		return
	}
	keys, _ := set["keys"].([]any)
	set["keys"] = append(keys, publicJWK(t, "test-key"))
	replaceJSON(res, set)
}

func replaceJSON(res *httptest.ResponseRecorder, value any) {
	data, _ := json.Marshal(value)
	res.Body = bytes.NewBuffer(data)
}

// editJSON changes a JSON response body.
func editJSON(res *httptest.ResponseRecorder, edit func(map[string]any)) {
	var body map[string]any
	if json.Unmarshal(res.Body.Bytes(), &body) != nil || body == nil {
		return
	}
	edit(body)
	replaceJSON(res, body)
}

// editRedirect changes the parameters of a redirect's Location, in its
// fragment when it has one and in its query otherwise.
func editRedirect(res *httptest.ResponseRecorder, edit func(params url.Values)) {
	location := res.Header().Get("Location")
	if location == "" {
		return
	}
	u, err := url.Parse(location)
	if err != nil {
		return
	}
	if u.Fragment != "" {
		params, _ := url.ParseQuery(u.Fragment)
		edit(params)
		u.Fragment, u.RawFragment = "", ""
		res.Header().Set("Location", u.String()+"#"+params.Encode())
		return
	}
	params := u.Query()
	edit(params)
	u.RawQuery = params.Encode()
	res.Header().Set("Location", u.String())
}

// resign returns raw with its claims changed, signed with the test key.
func resign(t testing.TB, raw string, edit func(claims map[string]any)) string {
	token, err := parseJWT(raw)
	if err != nil {
		t.Errorf("resign: %v", err)
		return raw
	}
	edit(token.Claims)
	return signToken(t, token.Claims, nil)
}

func isPath(r *http.Request, path string) bool { return r.URL.Path == path }

// runBroken runs the named modules of plan against a provider with the
// breakage and returns the report.
func runBroken(t *testing.T, b breakage, plan string, modules ...string) *Report {
	t.Helper()
	op := newTestProvider(t, broken(t, b))
	opts := op.options(t, false, plan)
	opts.Modules = modules
	return run(t, opts)
}

func TestBrokenIssInRedirect(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		editRedirect(res, func(p url.Values) {
			if p.Has("iss") {
				p.Set("iss", "https://evil.example.com")
			}
		})
	}}, "basic", "oidcc-server")
	expectModule(t, report, "oidcc-server", ResultFailed, checkIssInAuthorizationResponse, Failure)
}

func TestBrokenStateInRedirect(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		editRedirect(res, func(p url.Values) {
			if p.Has("state") {
				p.Set("state", p.Get("state")+"x")
			}
		})
	}}, "basic", "oidcc-server")
	expectModule(t, report, "oidcc-server", ResultFailed, checkStateInAuthorizationResponse, Failure)
}

func TestBrokenTokenCacheControl(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		if isPath(r, "/oauth2/token") {
			res.Header().Set("Cache-Control", "max-age=60")
		}
	}}, "basic", "oidcc-server", "oidcc-refresh-token")
	expectModule(t, report, "oidcc-server", ResultPassed, checkTokenCacheControlExtra, Extra)
	expectModule(t, report, "oidcc-refresh-token", ResultFailed, checkRefreshCacheControl, Failure)
}

// resignTokenResponse re-signs the id_token of every token response.
func resignTokenResponse(t testing.TB, edit func(claims map[string]any)) breakage {
	return breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		if !isPath(r, "/oauth2/token") {
			return
		}
		editJSON(res, func(body map[string]any) {
			if raw, ok := body["id_token"].(string); ok {
				body["id_token"] = resign(t, raw, edit)
			}
		})
	}}
}

func TestBrokenAtHash(t *testing.T) {
	t.Parallel()
	report := runBroken(t, resignTokenResponse(t, func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" }), "basic", "oidcc-server")
	expectModule(t, report, "oidcc-server", ResultFailed, checkValidateAtHash, Failure)
}

func TestBrokenMaxAgeAuthTime(t *testing.T) {
	t.Parallel()
	report := runBroken(t, resignTokenResponse(t, func(c map[string]any) { delete(c, "auth_time") }), "basic", "oidcc-max-age-10000")
	expectModule(t, report, "oidcc-max-age-10000", ResultFailed, checkAuthTimePresentMaxAge, Failure)
}

func TestBrokenAuthTimeNotRecent(t *testing.T) {
	t.Parallel()
	old := float64(time.Now().Add(-10 * time.Minute).Unix())
	report := runBroken(t, resignTokenResponse(t, func(c map[string]any) { c["auth_time"] = old }), "basic", "oidcc-max-age-1")
	expectModule(t, report, "oidcc-max-age-1", ResultFailed, checkAuthTimeRecent, Failure)
}

func TestBrokenHybridSubject(t *testing.T) {
	t.Parallel()
	report := runBroken(t, resignTokenResponse(t, func(c map[string]any) { c["sub"] = "someone-else" }), "hybrid", "oidcc-server")
	expectModuleVariant(t, report, "code id_token", "oidcc-server", ResultFailed, checkHybridSubject, Failure)
}

func TestBrokenEmailInIDToken(t *testing.T) {
	t.Parallel()
	report := runBroken(t, resignTokenResponse(t, func(c map[string]any) { c["email"] = "conformance@example.com" }), "basic", "oidcc-scope-email")
	expectModule(t, report, "oidcc-scope-email", ResultWarning, checkEmailNotInIDToken, Warning)
}

// codeHeader carries the code of a token request from codeReplay's answer
// function to its response function.
const codeHeader = "X-Test-Code"

// codeReplay responds to a second exchange of a code with the response to
// the first.
func codeReplay() breakage {
	var mu sync.Mutex
	answered := map[string][]byte{}
	return breakage{
		answer: func(w http.ResponseWriter, r *http.Request) bool {
			if !isPath(r, "/oauth2/token") {
				return false
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			form, _ := url.ParseQuery(string(body))
			r.Header.Set(codeHeader, form.Get("code"))
			mu.Lock()
			defer mu.Unlock()
			if stored, ok := answered[form.Get("code")]; ok && form.Get("code") != "" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(stored)
				return true
			}
			return false
		},
		response: func(r *http.Request, res *httptest.ResponseRecorder) {
			if !isPath(r, "/oauth2/token") || res.Code != http.StatusOK {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if code := r.Header.Get(codeHeader); code != "" {
				answered[code] = bytes.Clone(res.Body.Bytes())
			}
		},
	}
}

func TestBrokenCodeReuse(t *testing.T) {
	t.Parallel()
	report := runBroken(t, codeReplay(), "basic", "oidcc-codereuse", "oidcc-codereuse-30seconds")
	expectModule(t, report, "oidcc-codereuse", ResultWarning, checkReuseAllowed, Warning)
	expectModule(t, report, "oidcc-codereuse-30seconds", ResultFailed, checkReuseAllowed, Failure)
}

func TestBrokenRevocationAfterReuse(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		if isPath(r, "/userinfo") && res.Code == http.StatusUnauthorized {
			res.Code = http.StatusOK
			res.Header().Set("Content-Type", "application/json")
			res.Header().Del("WWW-Authenticate")
			replaceJSON(res, map[string]any{"sub": "anyone"})
		}
	}}, "basic", "oidcc-codereuse-30seconds")
	expectModule(t, report, "oidcc-codereuse-30seconds", ResultWarning, checkTokenRevokedAfterReuse, Warning)
}

// redirectInstead responds to the authorization requests that match with
// a redirect to their redirect_uri, as a provider that does not check it
// would.
func redirectInstead(match func(r *http.Request) bool, params url.Values) breakage {
	return breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if !isPath(r, "/oauth2/auth") || !match(r) {
			return false
		}
		_ = r.ParseForm()
		target := r.Form.Get("redirect_uri")
		if target == "" {
			return false
		}
		values := cloneValues(params)
		if state := r.Form.Get("state"); state != "" {
			values.Set("state", state)
		}
		separator := "?"
		if strings.Contains(target, "?") {
			separator = "&"
		}
		http.Redirect(w, r, target+separator+values.Encode(), http.StatusSeeOther)
		return true
	}}
}

func TestBrokenUnregisteredRedirect(t *testing.T) {
	t.Parallel()
	report := runBroken(t, redirectInstead(func(r *http.Request) bool {
		return strings.Count(r.URL.Query().Get("redirect_uri"), "/callback/") == 1
	}, url.Values{"error": {"invalid_request"}}), "basic", "oidcc-ensure-registered-redirect-uri")
	expectModule(t, report, "oidcc-ensure-registered-redirect-uri", ResultFailed, checkUnexpectedRedirect, Failure)
}

func TestBrokenRequestObjectRedirect(t *testing.T) {
	t.Parallel()
	b := breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if !isPath(r, "/oauth2/auth") || !r.URL.Query().Has("request") {
			return false
		}
		target := strings.TrimSuffix(r.URL.Query().Get("redirect_uri"), "/_invalid")
		http.Redirect(w, r, target+"?error=request_not_supported", http.StatusSeeOther)
		return true
	}}
	report := runBroken(t, b, "basic", "oidcc-ensure-request-object-with-redirect-uri")
	expectModule(t, report, "oidcc-ensure-request-object-with-redirect-uri", ResultFailed, checkRequestObjectRedirect, Failure)
}

// rewriteAuthorizationQuery changes the query of authorization requests.
func rewriteAuthorizationQuery(edit func(q url.Values)) breakage {
	return breakage{request: func(r *http.Request) {
		if isPath(r, "/oauth2/auth") && r.Method == http.MethodGet {
			q := r.URL.Query()
			edit(q)
			r.URL.RawQuery = q.Encode()
		}
	}}
}

func TestBrokenPromptLogin(t *testing.T) {
	t.Parallel()
	report := runBroken(t, rewriteAuthorizationQuery(func(q url.Values) { q.Del("prompt") }), "basic", "oidcc-prompt-login")
	expectModule(t, report, "oidcc-prompt-login", ResultFailed, checkLoginShown, Failure)
}

func TestBrokenMaxAgeLogin(t *testing.T) {
	t.Parallel()
	report := runBroken(t, rewriteAuthorizationQuery(func(q url.Values) {
		if q.Get("max_age") == "10000" {
			q.Set("prompt", "login")
		}
	}), "basic", "oidcc-max-age-10000")
	expectModule(t, report, "oidcc-max-age-10000", ResultFailed, checkNoLoginShown, Failure)
}

func TestBrokenErrorCodes(t *testing.T) {
	t.Parallel()
	toAccessDenied := breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		editRedirect(res, func(p url.Values) {
			if p.Has("error") {
				p.Set("error", "access_denied")
			}
		})
	}}
	report := runBroken(t, toAccessDenied, "basic", "oidcc-response-type-missing", "oidcc-prompt-none-not-logged-in")
	expectModule(t, report, "oidcc-response-type-missing", ResultFailed, checkErrorResponseTypeMissing, Failure)
	expectModule(t, report, "oidcc-prompt-none-not-logged-in", ResultFailed, checkErrorUserInterface, Failure)

	implicit := runBroken(t, toAccessDenied, "implicit", "oidcc-ensure-request-without-nonce-fails")
	expectModuleVariant(t, implicit, "id_token", "oidcc-ensure-request-without-nonce-fails", ResultFailed, checkErrorInvalidRequest, Failure)
}

func TestBrokenNoRedirectAfterConsent(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		if strings.Contains(res.Header().Get("Location"), "/callback") {
			res.Header().Del("Location")
			res.Header().Set("Content-Type", "text/html")
			res.Code = http.StatusOK
			res.Body = bytes.NewBufferString("<!DOCTYPE html><title>Done</title><p>You are signed in.</p>")
		}
	}}, "basic", "oidcc-server")
	expectModule(t, report, "oidcc-server", ResultFailed, checkExpectRedirect, Fatal)
}

// editDiscovery changes the discovery document.
func editDiscovery(edit func(document map[string]any)) breakage {
	return breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		if isPath(r, discoveryPath) {
			editJSON(res, edit)
		}
	}}
}

func TestBrokenDiscovery(t *testing.T) {
	t.Parallel()
	report := runBroken(t, editDiscovery(func(d map[string]any) {
		delete(d, "userinfo_endpoint")
	}), "basic", "oidcc-server")
	expectModule(t, report, "oidcc-server", ResultFailed, checkUserinfoEndpointPresent, Fatal)

	refresh := runBroken(t, editDiscovery(func(d map[string]any) {
		d["grant_types_supported"] = []any{"authorization_code", "implicit"}
		d["userinfo_signing_alg_values_supported"] = []any{"ES256"}
	}), "dynamic", "oidcc-refresh-token", "oidcc-userinfo-rs256")
	expectModule(t, refresh, "oidcc-refresh-token", ResultWarning, checkRefreshAdvertised, Warning)
	expectModule(t, refresh, "oidcc-userinfo-rs256", ResultFailed, checkUserinfoAlgAdvertised, Failure)
}

// editUserinfo changes successful JSON userinfo responses.
func editUserinfo(edit func(claims map[string]any)) breakage {
	return breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		if isPath(r, "/userinfo") && res.Code == http.StatusOK && strings.Contains(res.Header().Get("Content-Type"), "json") {
			editJSON(res, edit)
		}
	}}
}

func TestBrokenUserinfoClaims(t *testing.T) {
	t.Parallel()
	report := runBroken(t, editUserinfo(func(c map[string]any) {
		if _, hasEmail := c["email"]; hasEmail {
			c["name"] = "Added"
		} else {
			delete(c, "name")
		}
	}), "basic", "oidcc-scope-email", "oidcc-claims-essential")
	expectModule(t, report, "oidcc-scope-email", ResultWarning, checkNameNotInUserinfo, Warning)
	expectModule(t, report, "oidcc-claims-essential", ResultWarning, checkUserinfoHasName, Warning)
}

func TestBrokenUserinfoBody(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if isPath(r, "/userinfo") && r.Method == http.MethodPost && r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
			w.WriteHeader(http.StatusBadRequest)
			return true
		}
		return false
	}}, "basic", "oidcc-userinfo-post-body")
	expectModule(t, report, "oidcc-userinfo-post-body", ResultWarning, checkUserinfoBodyToken, Warning)
}

func TestBrokenIDTokenName(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{response: func(r *http.Request, res *httptest.ResponseRecorder) {
		editRedirect(res, func(p url.Values) {
			if raw := p.Get("id_token"); raw != "" {
				p.Set("id_token", resign(t, raw, func(c map[string]any) { delete(c, "name") }))
			}
		})
	}}, "implicit", "oidcc-claims-essential")
	expectModuleVariant(t, report, "id_token", "oidcc-claims-essential", ResultWarning, checkIDTokenHasName, Warning)
}

func TestBrokenClientDeletion(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/oauth2/register/") {
			w.WriteHeader(http.StatusOK)
			return true
		}
		return false
	}}, "basic", "oidcc-server")
	expectModule(t, report, "oidcc-server", ResultWarning, checkUnregister, Warning)
}

func TestBrokenAssertionAudience(t *testing.T) {
	t.Parallel()
	var issuerMu sync.Mutex
	issuer := ""
	b := breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if !isPath(r, "/oauth2/token") {
			return false
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		parts := strings.Split(form.Get("client_assertion"), ".")
		if len(parts) != 3 {
			return false
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		_ = json.Unmarshal(payload, &claims)

		issuerMu.Lock()
		defer issuerMu.Unlock()
		if issuer == "" || claims["aud"] != issuer {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"The assertion's audience is wrong."}`))
		return true
	}}
	op := newTestProvider(t, broken(t, b))
	issuerMu.Lock()
	issuer = op.issuer
	issuerMu.Unlock()

	opts := op.options(t, false, "dynamic")
	opts.Modules = []string{"oidcc-ensure-client-assertion-with-iss-aud-succeeds"}
	report := run(t, opts)
	expectModule(t, report, "oidcc-ensure-client-assertion-with-iss-aud-succeeds", ResultWarning, checkAssertionAudIssuer, Warning)
}

func TestBrokenRegistrationWithFragment(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if !isPath(r, "/oauth2/register") {
			return false
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !bytes.Contains(body, []byte("#foobar")) {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return true
	}}, "dynamic", "oidcc-redirect-uri-regfrag")
	expectModule(t, report, "oidcc-redirect-uri-regfrag", ResultFailed, checkRegistrationRejected, Failure)
	expectModule(t, report, "oidcc-redirect-uri-regfrag", ResultFailed, checkRegistrationRedirectError, Warning)
}

func TestRegistrationRejection(t *testing.T) {
	m := &moduleRun{}
	m.guard(func() {
		m.checkRegistrationRejection(registrationResult(400, map[string]any{"error": "invalid_redirect_uri"}), checkRegistrationMetadataError, "invalid_client_metadata")
	})
	expectFinding(t, m.findings, checkRegistrationMetadataError, Warning)

	created := &moduleRun{}
	created.guard(func() {
		created.checkRegistrationRejection(registrationResult(201, validRegistration()), checkRegistrationMetadataError, "invalid_client_metadata")
	})
	expectFinding(t, created.findings, checkRegistrationRejected, Failure)
	if len(created.clients) != 1 {
		t.Errorf("a client created anyway is not kept for deletion: %d clients", len(created.clients))
	}
}

// dropRegistered removes metadata members from registration requests, so
// that the provider never learns the client's logout URIs.
func dropRegistered(members ...string) breakage {
	return breakage{request: func(r *http.Request) {
		if !isPath(r, "/oauth2/register") || r.Method != http.MethodPost {
			return
		}
		var body map[string]any
		data, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(data, &body)
		for _, member := range members {
			delete(body, member)
		}
		data, _ = json.Marshal(body)
		r.Body = io.NopCloser(bytes.NewReader(data))
		r.ContentLength = int64(len(data))
		r.Header.Set("Content-Length", strconv.Itoa(len(data)))
	}}
}

func TestBrokenBackchannelLogout(t *testing.T) {
	t.Parallel()
	report := runBroken(t, dropRegistered("backchannel_logout_uri", "backchannel_logout_session_required"), "backchannel-logout", "oidcc-backchannel-rp-initiated-logout")
	expectModule(t, report, "oidcc-backchannel-rp-initiated-logout", ResultFailed, checkBackchannelReceived, Fatal)
}

func TestBrokenFrontchannelLogout(t *testing.T) {
	t.Parallel()
	report := runBroken(t, dropRegistered("frontchannel_logout_uri", "frontchannel_logout_session_required"), "frontchannel-logout", "oidcc-frontchannel-rp-initiated-logout")
	m := report.Module("frontchannel-logout", "", "oidcc-frontchannel-rp-initiated-logout")
	if m != nil && m.Result == ResultSkipped {
		t.Skipf("needs Chromium: %s", m.Reason)
	}
	expectModule(t, report, "oidcc-frontchannel-rp-initiated-logout", ResultFailed, checkFrontchannelReceived, Fatal)
}

func TestBrokenLogoutRedirect(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if !isPath(r, "/oauth2/logout") {
			return false
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<!DOCTYPE html><title>Bye</title><p>Signed out.</p>"))
		return true
	}}, "rp-initiated-logout", "oidcc-rp-initiated-logout")
	expectModule(t, report, "oidcc-rp-initiated-logout", ResultFailed, checkPostLogoutRedirect, Fatal)
}

func TestBrokenLogoutKeepsSession(t *testing.T) {
	t.Parallel()
	report := runBroken(t, breakage{answer: func(w http.ResponseWriter, r *http.Request) bool {
		if !isPath(r, "/oauth2/logout") {
			return false
		}
		target := r.URL.Query().Get("post_logout_redirect_uri") + "?state=" + url.QueryEscape(r.URL.Query().Get("state"))
		http.Redirect(w, r, target, http.StatusSeeOther)
		return true
	}}, "rp-initiated-logout", "oidcc-rp-initiated-logout")
	expectModule(t, report, "oidcc-rp-initiated-logout", ResultFailed, checkLoggedOut, Failure)
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBrokenLogoutTokenNonce(t *testing.T) {
	t.Parallel()
	addNonce := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			body, _ := io.ReadAll(r.Body)
			form, _ := url.ParseQuery(string(body))
			if raw := form.Get("logout_token"); raw != "" {
				form.Set("logout_token", resign(t, raw, func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" }))
			}
			encoded := form.Encode()
			r = r.Clone(r.Context())
			r.Body = io.NopCloser(strings.NewReader(encoded))
			r.ContentLength = int64(len(encoded))
			return next.RoundTrip(r)
		})
	}
	op := newTestProviderWith(t, providerSetup{wrap: broken(t, breakage{}), backchannel: addNonce})
	opts := op.options(t, false, "backchannel-logout")
	opts.Modules = []string{"oidcc-backchannel-rp-initiated-logout"}
	report := run(t, opts)
	expectModule(t, report, "oidcc-backchannel-rp-initiated-logout", ResultFailed, checkLogoutTokenNonce, Failure)
}
