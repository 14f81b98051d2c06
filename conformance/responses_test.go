package conformance

import (
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func tokenResult(status int, header http.Header, body map[string]any) *tokenResponse {
	data, _ := json.Marshal(body)
	if header == nil {
		header = http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}, "Pragma": {"no-cache"}}
	}
	t := &tokenResponse{httpResult: &httpResult{URL: testIssuer + "/token", Status: status, Header: header, Body: data}}
	_ = json.Unmarshal(data, &t.JSON)
	return t
}

func validTokenBody() map[string]any {
	return map[string]any{"access_token": "Zk9xM2ZhQjR2UzFxR2hYcDNrV0xNTnF2", "token_type": "Bearer", "expires_in": 3600.0,
		"refresh_token": "cmVmcmVzaC10b2tlbi12YWx1ZS0xMjM0NTY3ODk", "id_token": "x"}
}

func TestCheckTokenSuccess(t *testing.T) {
	var ok findingList
	checkTokenSuccess(&ok, tokenResult(200, nil, validTokenBody()), Warning)
	expectNoFailure(t, ok)
	if len(ok) != 0 {
		t.Errorf("a valid token response got findings:\n%s", formatFindings(ok))
	}

	cases := []struct {
		name     string
		result   *tokenResponse
		check    *Check
		severity Severity
	}{
		{"transport error", &tokenResponse{httpResult: &httpResult{URL: "x", Err: errors.New("reset")}}, checkTokenStatus200, Fatal},
		{"status 400", tokenResult(400, nil, map[string]any{"error": "invalid_grant"}), checkTokenStatus200, Fatal},
		{"empty object", tokenResult(200, nil, map[string]any{}), checkTokenJSON, Fatal},
		{"error member", tokenResult(200, nil, with(validTokenBody(), "error", "x")), checkTokenNoError, Fatal},
		{"no token_type", tokenResult(200, nil, without(validTokenBody(), "token_type")), checkTokenAccessToken, Fatal},
		{"no expires_in", tokenResult(200, nil, without(validTokenBody(), "expires_in")), checkExpiresInPresent, Warning},
		{"negative expires_in", tokenResult(200, nil, with(validTokenBody(), "expires_in", -1)), checkExpiresInValid, Failure},
		{"no refresh token", tokenResult(200, nil, without(validTokenBody(), "refresh_token")), checkRefreshTokenPresent, Info},
		{"no Cache-Control", tokenResult(200, http.Header{"Content-Type": {"application/json"}, "Pragma": {"no-cache"}}, validTokenBody()), checkTokenCacheControlExtra, Extra},
		{"no Pragma", tokenResult(200, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}, validTokenBody()), checkTokenPragmaExtra, Extra},
		{"text/plain", tokenResult(200, http.Header{"Content-Type": {"text/plain"}, "Cache-Control": {"no-store"}, "Pragma": {"no-cache"}}, validTokenBody()), checkTokenContentTypeExtra, Extra},
		{"token_type mac", tokenResult(200, nil, with(validTokenBody(), "token_type", "mac")), checkTokenTypeBearerExtra, Extra},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			checkTokenSuccess(&findings, c.result, Warning)
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestCheckRefreshResponse(t *testing.T) {
	var ok findingList
	checkRefreshResponse(&ok, tokenResult(200, nil, validTokenBody()))
	expectNoFailure(t, ok)

	cases := []struct {
		name     string
		result   *tokenResponse
		check    *Check
		severity Severity
	}{
		{"status 500", tokenResult(500, nil, validTokenBody()), checkRefreshStatus, Failure},
		{"text/html", tokenResult(200, http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"no-store"}}, validTokenBody()), checkRefreshContentType, Failure},
		{"cacheable", tokenResult(200, http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"max-age=60"}}, validTokenBody()), checkRefreshCacheControl, Failure},
		{"token_type mac", tokenResult(200, nil, with(validTokenBody(), "token_type", "mac")), checkRefreshTokenType, Failure},
		{"short access token", tokenResult(200, nil, with(validTokenBody(), "access_token", "aaaaaaaaaaaaaaaaaaaa")), checkAccessTokenEntropy, Failure},
		{"access token with a newline", tokenResult(200, nil, with(validTokenBody(), "access_token", "Zk9xM2ZhQjR2UzFxR2hYcDNr\nV0xNTnF2cXdlcnR5dWlvcA")), checkAccessTokenCharacters, Failure},
		{"short refresh token", tokenResult(200, nil, with(validTokenBody(), "refresh_token", "abc")), checkRefreshTokenLength, Failure},
		{"low-entropy refresh token", tokenResult(200, nil, with(validTokenBody(), "refresh_token", strings.Repeat("ab", 20))), checkRefreshTokenEntropy, Failure},
		{"refresh token with a tab", tokenResult(200, nil, with(validTokenBody(), "refresh_token", "cmVmcmVzaC10b2tlbi12YWx1ZS0xMjM0NTY3ODk\t")), checkRefreshTokenCharacters, Failure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			checkRefreshResponse(&findings, c.result)
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestCompareIDTokenClaims(t *testing.T) {
	now := time.Now()
	first := mustParse(t, signToken(t, validIDTokenClaims(now), nil))
	second := validIDTokenClaims(now.Add(time.Second))
	second["auth_time"] = first.Claims["auth_time"]
	var ok findingList
	compareIDTokenClaims(&ok, first, mustParse(t, signToken(t, second, nil)))
	expectNoFailure(t, ok)

	for name, mutate := range map[string]func(map[string]any){
		"same iat":          func(c map[string]any) { c["iat"] = first.Claims["iat"] },
		"other sub":         func(c map[string]any) { c["sub"] = "user-2" },
		"other aud":         func(c map[string]any) { c["aud"] = []any{testClientID, "x"} },
		"other auth_time":   func(c map[string]any) { c["auth_time"] = now.Unix() + 5 },
		"azp added":         func(c map[string]any) { c["azp"] = testClientID },
		"other iss as well": func(c map[string]any) { c["iss"] = "x" },
	} {
		t.Run(name, func(t *testing.T) {
			claims := validIDTokenClaims(now.Add(time.Second))
			claims["auth_time"] = first.Claims["auth_time"]
			mutate(claims)
			var findings findingList
			compareIDTokenClaims(&findings, first, mustParse(t, signToken(t, claims, nil)))
			expectFinding(t, findings, checkCompareIDTokenClaims, Failure)
		})
	}
}

func TestCheckTokenError(t *testing.T) {
	valid := map[string]any{"error": "invalid_grant", "error_description": "The code was used."}
	var ok findingList
	checkTokenError(&ok, tokenResult(400, nil, valid), "invalid_grant")
	expectNoFailure(t, ok)

	var unauthorized findingList
	checkTokenError(&unauthorized, tokenResult(401, nil, map[string]any{"error": "invalid_client"}), "invalid_client")
	expectNoFailure(t, unauthorized)

	cases := []struct {
		name     string
		result   *tokenResponse
		check    *Check
		severity Severity
	}{
		{"status 500", tokenResult(500, nil, valid), checkTokenErrorStatus, Failure},
		{"text/html", tokenResult(400, http.Header{"Content-Type": {"text/html"}}, valid), checkTokenErrorContentType, Failure},
		{"other error", tokenResult(400, nil, with(map[string]any{}, "error", "invalid_request")), checkTokenErrorCode, Failure},
		{"error with a quote", tokenResult(400, nil, with(map[string]any{}, "error", `invalid"grant`)), checkTokenErrorChars, Failure},
		{"description with a quote", tokenResult(400, nil, with(map[string]any{"error": "invalid_grant"}, "error_description", `bad "code"`)), checkTokenErrorDescriptionChars, Failure},
		{"description with a newline", tokenResult(400, nil, with(map[string]any{"error": "invalid_grant"}, "error_description", "bad\ncode")), checkTokenErrorDescriptionCRLF, Warning},
		{"error_uri with a space", tokenResult(400, nil, with(map[string]any{"error": "invalid_grant"}, "error_uri", "https://x/a b")), checkTokenErrorURIChars, Failure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			checkTokenError(&findings, c.result, "invalid_grant")
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestInvalidClientChallengeExtra(t *testing.T) {
	var findings findingList
	checkInvalidClientChallengeExtra(&findings, tokenResult(401, nil, map[string]any{"error": "invalid_client"}))
	expectFinding(t, findings, checkTokenWWWAuthenticateExtra, Extra)

	var ok findingList
	header := http.Header{"Content-Type": {"application/json"}, "Www-Authenticate": {`Basic realm="op"`}}
	checkInvalidClientChallengeExtra(&ok, tokenResult(401, header, map[string]any{"error": "invalid_client"}))
	if len(ok) != 0 {
		t.Errorf("a challenge was reported missing: %v", ok)
	}
}

func userinfoResult(status int, contentType string, body string) *httpResult {
	return &httpResult{URL: testIssuer + "/userinfo", Status: status, Header: http.Header{"Content-Type": {contentType}}, Body: []byte(body)}
}

func TestCheckUserinfoResponse(t *testing.T) {
	now := time.Now()
	var ok findingList
	claims := checkUserinfoResponse(&ok, userinfoResult(200, "application/json", `{"sub":"user-1","name":"A"}`), "user-1", "user-1", now)
	expectNoFailure(t, ok)
	if claims["name"] != "A" {
		t.Errorf("claims = %v", claims)
	}

	cases := []struct {
		name     string
		result   *httpResult
		check    *Check
		severity Severity
	}{
		{"status 401", userinfoResult(401, "application/json", `{"sub":"user-1"}`), checkUserinfoStatus, Failure},
		{"text/plain", userinfoResult(200, "text/plain", `{"sub":"user-1"}`), checkRegistrationContentType, Failure},
		{"not JSON", userinfoResult(200, "application/json", `sub=user-1`), checkUserinfoJSON, Fatal},
		{"no sub", userinfoResult(200, "application/json", `{"name":"A"}`), checkUserinfoSub, Failure},
		{"other sub than the front ID token", userinfoResult(200, "application/json", `{"sub":"user-2"}`), checkUserinfoSubFront, Failure},
		{"other sub than the token ID token", userinfoResult(200, "application/json", `{"sub":"user-2"}`), checkUserinfoSubToken, Failure},
		{"numeric name", userinfoResult(200, "application/json", `{"sub":"user-1","name":5}`), checkUserinfoStandardClaims, Failure},
		{"claim names without sources", userinfoResult(200, "application/json", `{"sub":"user-1","_claim_names":{"a":"s"}}`), checkUserinfoClaimSources, Failure},
		{"unreferenced source", userinfoResult(200, "application/json", `{"sub":"user-1","_claim_names":{},"_claim_sources":{"s":{}}}`), checkUserinfoClaimSources, Failure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			checkUserinfoResponse(&findings, c.result, "user-1", "user-1", now)
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestUnauthorizedUserinfoExtra(t *testing.T) {
	challenge := func(value string) *httpResult {
		return &httpResult{Status: 401, Header: http.Header{"Www-Authenticate": {value}}}
	}
	var ok findingList
	checkUnauthorizedUserinfoExtra(&ok, challenge(`Bearer realm="op"`), challenge(`Bearer error="invalid_token"`))
	if len(ok) != 0 {
		t.Errorf("correct challenges were reported: %v", ok)
	}
	for name, pair := range map[string][2]*httpResult{
		"status 400":       {&httpResult{Status: 400, Header: http.Header{}}, challenge(`Bearer error="invalid_token"`)},
		"no challenge":     {&httpResult{Status: 401, Header: http.Header{}}, challenge(`Bearer error="invalid_token"`)},
		"no invalid_token": {challenge("Bearer"), challenge("Bearer")},
	} {
		t.Run(name, func(t *testing.T) {
			var findings findingList
			checkUnauthorizedUserinfoExtra(&findings, pair[0], pair[1])
			expectFinding(t, findings, checkUserinfoWWWAuthenticateExtra, Extra)
		})
	}
}

func TestTokenTypeUsable(t *testing.T) {
	var findings findingList
	checkTokenTypeUsable(&findings, "mac")
	expectFinding(t, findings, checkBearerTokenType, Fatal)
	var ok findingList
	checkTokenTypeUsable(&ok, "bearer")
	checkTokenTypeUsable(&ok, "DPoP")
	expectNoFailure(t, ok)
}

func TestScopeClaims(t *testing.T) {
	var findings findingList
	checkScopeClaims(&findings, checkScopeClaimsUserinfo, map[string]any{"sub": "a", "email": "a@b"}, []string{"openid", "email"}, "userinfo")
	expectFinding(t, findings, checkScopeClaimsUserinfo, Warning)
	if !strings.Contains(findings[0].Message, "email_verified") {
		t.Errorf("the message does not name the missing claim: %s", findings[0].Message)
	}
	var idToken findingList
	checkScopeClaims(&idToken, checkScopeClaimsIDToken, map[string]any{"sub": "a"}, []string{"phone"}, "the ID token")
	expectFinding(t, idToken, checkScopeClaimsIDToken, Warning)
}

func TestSignedUserinfo(t *testing.T) {
	c := &client{ID: testClientID}
	valid := map[string]any{"iss": testIssuer, "aud": testClientID, "sub": "user-1"}
	result := func(claims map[string]any, header map[string]any, contentType string) *httpResult {
		return userinfoResult(200, contentType, signToken(t, claims, header))
	}
	var ok findingList
	if claims := checkSignedUserinfo(&ok, result(valid, nil, "application/jwt"), testIssuer, c, testJWKS(t)); claims["sub"] != "user-1" {
		t.Errorf("claims = %v", claims)
	}
	expectNoFailure(t, ok)

	cases := []struct {
		name     string
		result   *httpResult
		check    *Check
		severity Severity
	}{
		{"JSON content type", result(valid, nil, "application/json"), checkUserinfoJWTContentType, Failure},
		{"unknown kid", result(valid, map[string]any{"kid": "other"}, "application/jwt"), checkUserinfoSignature, Failure},
		{"plain JSON body", userinfoResult(200, "application/jwt", `{"sub":"user-1"}`), checkUserinfoSignature, Fatal},
		{"wrong iss", result(with(map[string]any{"aud": testClientID, "sub": "a"}, "iss", "x"), nil, "application/jwt"), checkUserinfoJWTClaims, Warning},
		{"nonce", result(with(map[string]any{"iss": testIssuer, "aud": testClientID, "sub": "a"}, "nonce", "n"), nil, "application/jwt"), checkUserinfoNoNonce, Failure},
		{"status 500", &httpResult{Status: 500, Header: http.Header{"Content-Type": {"application/jwt"}}, Body: []byte(signToken(t, valid, nil))}, checkUserinfoStatus, Failure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var findings findingList
			checkSignedUserinfo(&findings, tc.result, testIssuer, c, testJWKS(t))
			expectFinding(t, findings, tc.check, tc.severity)
		})
	}

	es := base64URL(`{"alg":"ES256","kid":"test-key"}`) + "." + base64URL(`{"sub":"a"}`) + ".c2ln"
	var esFindings findingList
	checkSignedUserinfo(&esFindings, userinfoResult(200, "application/jwt", es), testIssuer, c, testJWKS(t))
	expectFinding(t, esFindings, checkUserinfoAlgRS256, Failure)
}

func registrationResult(status int, body map[string]any) *httpResult {
	data, _ := json.Marshal(body)
	return &httpResult{URL: testIssuer + "/register", Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: data}
}

func validRegistration() map[string]any {
	return map[string]any{"client_id": "c1", "client_secret": "s", "client_secret_expires_at": 0,
		"registration_client_uri": testIssuer + "/register/c1", "registration_access_token": "t"}
}

func TestCheckRegistrationResponse(t *testing.T) {
	var ok findingList
	checkRegistrationResponse(&ok, registrationResult(201, validRegistration()))
	expectNoFailure(t, ok)

	textPlain := registrationResult(201, validRegistration())
	textPlain.Header.Set("Content-Type", "text/plain")
	cases := []struct {
		name     string
		result   *httpResult
		check    *Check
		severity Severity
	}{
		{"status 200", registrationResult(200, validRegistration()), checkRegistrationStatus, Failure},
		{"text/plain", textPlain, checkRegistrationContentType, Failure},
		{"error member", registrationResult(201, with(validRegistration(), "error", "x")), checkRegistrationNoError, Failure},
		{"no client_id", registrationResult(201, without(validRegistration(), "client_id")), checkRegistrationClientID, Fatal},
		{"uri without token", registrationResult(201, without(validRegistration(), "registration_access_token")), checkRegistrationManagement, Failure},
		{"http uri", registrationResult(201, with(validRegistration(), "registration_client_uri", "http://op/register/c1")), checkRegistrationManagement, Failure},
		{"secret without expiry", registrationResult(201, without(validRegistration(), "client_secret_expires_at")), checkRegistrationSecretExpiry, Failure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			checkRegistrationResponse(&findings, c.result)
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestSuccessParameters(t *testing.T) {
	code := variant{ResponseType: "code id_token token"}
	valid := url.Values{"code": {"c"}, "state": {"s"}, "iss": {testIssuer}, "access_token": {"a"}, "token_type": {"Bearer"}}
	var ok findingList
	checkSuccessParameters(&ok, code, valid, testIssuer, "s")
	expectNoFailure(t, ok)

	cases := []struct {
		name     string
		mutate   func(url.Values)
		check    *Check
		severity Severity
	}{
		{"wrong iss", func(v url.Values) { v.Set("iss", "https://evil.example.com") }, checkIssInAuthorizationResponse, Failure},
		{"error", func(v url.Values) { v.Set("error", "access_denied") }, checkAuthorizationEndpointError, Fatal},
		{"changed state", func(v url.Values) { v.Set("state", "S") }, checkStateInAuthorizationResponse, Failure},
		{"no state", func(v url.Values) { v.Del("state") }, checkStateInAuthorizationResponse, Failure},
		{"no code", func(v url.Values) { v.Del("code") }, checkExtractCode, Fatal},
		{"no token_type", func(v url.Values) { v.Del("token_type") }, checkExtractAccessToken, Fatal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := cloneValues(valid)
			c.mutate(params)
			var findings findingList
			checkSuccessParameters(&findings, code, params, testIssuer, "s")
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestCodeStrength(t *testing.T) {
	var short findingList
	checkCodeStrength(&short, "abc")
	expectFinding(t, short, checkCodeLength, Failure)
	var repetitive findingList
	checkCodeStrength(&repetitive, strings.Repeat("a", 40))
	expectFinding(t, repetitive, checkCodeEntropy, Failure)
	var ok findingList
	checkCodeStrength(&ok, "Q3ZhZ2VzLWFyZS1ub3QtZ3Vlc3NhYmxlLTk4NzY1")
	expectNoFailure(t, ok)
}

func TestRegisteredQuery(t *testing.T) {
	var findings findingList
	checkRegisteredQuery(&findings, "http://rp/callback?bar=foo", &callbackEvent{Query: url.Values{"code": {"c"}}})
	expectFinding(t, findings, checkMatchingCallbackParameters, Failure)
	var ok findingList
	checkRegisteredQuery(&ok, "http://rp/callback?bar=foo", &callbackEvent{Query: url.Values{"bar": {"foo"}, "code": {"c"}}})
	expectNoFailure(t, ok)
}

func TestAuthorizationError(t *testing.T) {
	cb := &callbackEvent{Query: url.Values{}}
	valid := url.Values{"error": {"login_required"}, "state": {"s"}, "iss": {testIssuer}, "error_description": {"Log in."}}
	var ok findingList
	checkAuthorizationError(&ok, valid, cb, nil, testIssuer, "s")
	expectNoFailure(t, ok)

	cases := []struct {
		name     string
		mutate   func(url.Values)
		check    *Check
		severity Severity
	}{
		{"no error", func(v url.Values) { v.Del("error") }, checkErrorPresent, Failure},
		{"code", func(v url.Values) { v.Set("code", "c") }, checkNoCodeInError, Failure},
		{"extra parameter", func(v url.Values) { v.Set("debug", "x") }, checkErrorParameters, Warning},
		{"tab in description", func(v url.Values) { v.Set("error_description", "a\tb") }, checkErrorDescriptionCRLF, Warning},
		{"quote in description", func(v url.Values) { v.Set("error_description", `a"b`) }, checkErrorDescriptionChars, Failure},
		{"space in error_uri", func(v url.Values) { v.Set("error_uri", "https://op/a b") }, checkErrorURIChars, Failure},
		{"state dropped", func(v url.Values) { v.Del("state") }, checkStateInAuthorizationResponse, Failure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := cloneValues(valid)
			c.mutate(params)
			var findings findingList
			checkAuthorizationError(&findings, params, cb, nil, testIssuer, "s")
			expectFinding(t, findings, c.check, c.severity)
		})
	}

	t.Run("state may be missing for invalid_request_object", func(t *testing.T) {
		var findings findingList
		checkAuthorizationError(&findings, url.Values{"error": {"invalid_request_object"}}, cb, nil, testIssuer, "s")
		expectNoFailure(t, findings)
	})
	t.Run("error codes", func(t *testing.T) {
		var findings findingList
		checkUserInterfaceError(&findings, "access_denied")
		expectFinding(t, findings, checkErrorUserInterface, Failure)
	})
}

func TestResponseParameters(t *testing.T) {
	m := &moduleRun{variant: variant{ResponseType: "code", ResponseMode: "form_post"}}
	res := &authResult{callback: &callbackEvent{Method: "GET", ContentType: "", Query: url.Values{"code": {"c"}, "error": {"e"}}}}
	m.guard(func() { m.responseParameters(res) })
	expectFinding(t, m.findings, checkCallbackMethodPost, Failure)
	expectFinding(t, m.findings, checkCallbackContentType, Failure)
	expectFinding(t, m.findings, checkRejectCodeInQuery, Failure)
	expectFinding(t, m.findings, checkRejectErrorInQuery, Failure)

	fragment := &moduleRun{variant: variant{ResponseType: "id_token"}}
	res = &authResult{callback: &callbackEvent{Method: "GET", Query: url.Values{"code": {"c"}}}, fragment: url.Values{"id_token": {"x"}}}
	var params url.Values
	fragment.guard(func() { params = fragment.responseParameters(res) })
	expectFinding(t, fragment.findings, checkRejectCodeInQuery, Failure)
	if params.Get("id_token") != "x" {
		t.Errorf("the fragment's parameters were not used: %v", params)
	}

	post := &moduleRun{variant: variant{ResponseType: "code", ResponseMode: "form_post"}}
	res = &authResult{callback: &callbackEvent{Method: "POST", ContentType: "application/x-www-form-urlencoded", Query: url.Values{}, Form: url.Values{"code": {"c"}}}}
	post.guard(func() { params = post.responseParameters(res) })
	expectNoFailure(t, post.findings)
	if params.Get("code") != "c" {
		t.Errorf("the form's parameters were not used: %v", params)
	}
}

func TestModuleChecks(t *testing.T) {
	now := time.Now()
	first := mustParse(t, signToken(t, map[string]any{"sub": "a", "auth_time": float64(now.Unix())}, nil))
	earlier := mustParse(t, signToken(t, map[string]any{"sub": "b", "auth_time": float64(now.Unix() - 10)}, nil))

	var later findingList
	checkAuthTimeLaterIfPresent(&later, first, earlier)
	expectFinding(t, later, checkAuthTimeLater, Failure)

	var same findingList
	checkSameAuthentication(&same, first, earlier)
	expectFinding(t, same, checkSubSame, Failure)
	expectFinding(t, same, checkAuthTimeSame, Failure)

	var acr findingList
	checkACRValue(&acr, first, []string{"1", "2"})
	expectFinding(t, acr, checkACRAgainstValues, Warning)
	var otherACR findingList
	checkACRValue(&otherACR, mustParse(t, signToken(t, map[string]any{"acr": "3"}, nil)), []string{"1", "2"})
	expectFinding(t, otherACR, checkACRAgainstValues, Warning)

	var post findingList
	checkPostLogoutQuery(&post, url.Values{"state": {"x"}, "sid": {"s"}}, "y")
	expectFinding(t, post, checkPostLogoutState, Failure)
	expectFinding(t, post, checkPostLogoutParameters, Warning)
	var noState findingList
	checkPostLogoutQuery(&noState, url.Values{"state": {"x"}}, "")
	expectFinding(t, noState, checkPostLogoutState, Failure)

	var front findingList
	idToken := mustParse(t, signToken(t, map[string]any{"sid": "s1"}, nil))
	checkFrontchannelRequest(&front, url.Values{"iss": {"x"}, "sid": {"s2"}, "extra": {"1"}}, testIssuer, idToken)
	expectFinding(t, front, checkFrontchannelIss, Failure)
	expectFinding(t, front, checkFrontchannelSid, Failure)
	expectFinding(t, front, checkFrontchannelParameters, Warning)
}

func TestBackchannelTLS(t *testing.T) {
	var plain findingList
	checkBackchannelRequestTLS(&plain, nil)
	expectNoFailure(t, plain)

	var weak findingList
	checkBackchannelRequestTLS(&weak, &tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_RSA_WITH_AES_128_CBC_SHA})
	expectFinding(t, weak, checkBackchannelTLS, Warning)
	expectFinding(t, weak, checkBackchannelTLS13, Warning)

	var modern findingList
	checkBackchannelRequestTLS(&modern, &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256})
	if len(modern) != 0 {
		t.Errorf("TLS 1.3 got findings: %v", modern)
	}
}

func TestRotatedKeys(t *testing.T) {
	old := testJWKS(t)
	other := mustRSAKey()
	rotated := append(testJWKS(t), jsonWebKey(other, "new"))

	var ok findingList
	compareRotatedKeys(&ok, old, rotated)
	expectNoFailure(t, ok)

	var unchanged findingList
	compareRotatedKeys(&unchanged, old, old)
	expectFinding(t, unchanged, checkNewSigningKey, Failure)

	var dropped findingList
	compareRotatedKeys(&dropped, old, rotated[1:])
	expectFinding(t, dropped, checkOldSigningKey, Warning)
}

func base64URL(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func jsonWebKey(key *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key.Public(), KeyID: kid, Use: "sig", Algorithm: "RS256"}
}
