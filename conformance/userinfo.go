package conformance

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// How a module sends the access token to the userinfo endpoint (OpenID
// Connect Core §5.3.1, RFC 6750 §2).
type userinfoStyle int

const (
	userinfoGet userinfoStyle = iota
	userinfoPostHeader
	userinfoPostBody
)

var (
	checkBearerTokenType = defineCheck("CallProtectedResourceWithBearerToken",
		"token_type is Bearer or DPoP, case-insensitive, so the access token can be sent")
	checkUserinfoStatus = defineCheck("EnsureHttpStatusCodeIs200",
		"the userinfo endpoint answers 200 to a valid access token")
	checkUserinfoBodyToken = defineCheck("UserInfoEndpointWithAccessTokenInBodyNotSupported",
		"the userinfo endpoint accepts the access token in a form body, which RFC 6750 §2.2 makes optional")
	checkUserinfoJSON = defineCheck("ExtractUserInfoFromUserInfoEndpointResponse",
		"the userinfo response is a JSON object")
	checkUserinfoStandardClaims = defineCheck("ValidateUserInfoStandardClaims",
		"userinfo claims have the types OpenID Connect Core §5.1 gives them")
	checkUserinfoSub = defineCheck("EnsureUserInfoContainsSub",
		"the userinfo response has sub")
	checkUserinfoClaimSources = defineCheck("CheckUserInfoClaimNamesAndSources",
		"_claim_names and _claim_sources come together, and every source is referenced (OpenID Connect Core §5.6.2)")
	checkUserinfoSubFront = defineCheck("VerifyUserInfoAndIdTokenInAuthorizationEndpointSameSub",
		"userinfo's sub equals the sub of the authorization endpoint's ID token")
	checkUserinfoSubToken = defineCheck("VerifyUserInfoAndIdTokenInTokenEndpointSameSub",
		"userinfo's sub equals the sub of the token endpoint's ID token")
	checkUserinfoWWWAuthenticateExtra = defineCheck("ExtraUserInfoUnauthorizedWWWAuthenticate",
		"userinfo answers a missing or invalid token with 401 and WWW-Authenticate: Bearer (RFC 6750 §3)")
	checkTokenRevokedAfterReuse = defineCheck("EnsureHttpStatusCodeIs4xx",
		"after a code is reused, the access token issued for it is revoked (RFC 6749 §4.1.2)")
)

// callUserinfo sends the access token to the userinfo endpoint.
func (m *moduleRun) callUserinfo(style userinfoStyle, token, tokenType string) *httpResult {
	endpoint := m.config.str("userinfo_endpoint")
	method := http.MethodGet
	var body string
	if style != userinfoGet {
		method = http.MethodPost
	}
	if style == userinfoPostBody {
		body = url.Values{"access_token": {token}}.Encode()
	}
	req, err := http.NewRequestWithContext(m.ctx, method, endpoint, strings.NewReader(body))
	if err != nil {
		return &httpResult{Method: method, URL: endpoint, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	if style != userinfoGet {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if style != userinfoPostBody && token != "" {
		req.Header.Set("Authorization", tokenType+" "+token)
	}
	return m.h.send(req)
}

// callProtectedResource sends the access token in the Authorization header
// with its token_type as the scheme, as the official suite does, and
// checks for 200. It returns the response.
func (m *moduleRun) callProtectedResource(token, tokenType string) *httpResult {
	checkTokenTypeUsable(m, tokenType)
	result := m.callUserinfo(userinfoGet, token, tokenType)
	switch {
	case result.Err != nil:
		report(m, checkUserinfoStatus, Failure, "GET %s failed: %v", result.URL, result.Err)
	case result.Status != http.StatusOK:
		report(m, checkUserinfoStatus, Failure, "the userinfo endpoint responded with status %d to the access token: %s", result.Status, describeBody(result.Header, result.Body))
	}
	return result
}

func checkTokenTypeUsable(r recorder, tokenType string) {
	if !strings.EqualFold(tokenType, "bearer") && !strings.EqualFold(tokenType, "dpop") {
		report(r, checkBearerTokenType, Fatal, "token_type is %q; only Bearer and DPoP can be sent", tokenType)
	}
}

// checkUserinfoResponse makes the checks of the userinfo modules on a
// JSON userinfo response and returns its claims.
func checkUserinfoResponse(r recorder, result *httpResult, frontSub, tokenSub string, now time.Time) map[string]any {
	if result.Err != nil || result.Status != http.StatusOK {
		report(r, checkUserinfoStatus, Failure, "the userinfo endpoint responded with status %d: %s", result.Status, describeBody(result.Header, result.Body))
	}
	if mediaType(result.Header) != "application/json" {
		report(r, checkRegistrationContentType, Failure, "the userinfo response has Content-Type %q, expected application/json", result.Header.Get("Content-Type"))
	}
	var claims map[string]any
	if err := json.Unmarshal(result.Body, &claims); err != nil || claims == nil {
		report(r, checkUserinfoJSON, Fatal, "the userinfo response is not a JSON object: %s", describeBody(result.Header, result.Body))
		return nil
	}
	checkUserinfoClaims(r, claims, frontSub, tokenSub, now)
	return claims
}

// checkUserinfoClaims checks the claims of a userinfo response, plain or
// signed.
func checkUserinfoClaims(r recorder, claims map[string]any, frontSub, tokenSub string, now time.Time) {
	checkStandardClaims(r, checkUserinfoStandardClaims, claims, now)
	sub, _ := claims["sub"].(string)
	if sub == "" {
		report(r, checkUserinfoSub, Failure, "the userinfo response has no sub")
	}
	checkClaimSources(r, claims)
	if frontSub != "" && sub != frontSub {
		report(r, checkUserinfoSubFront, Failure, "userinfo sub %q differs from the authorization endpoint ID token's %q", sub, frontSub)
	}
	if tokenSub != "" && sub != tokenSub {
		report(r, checkUserinfoSubToken, Failure, "userinfo sub %q differs from the token endpoint ID token's %q", sub, tokenSub)
	}
}

func checkClaimSources(r recorder, claims map[string]any) {
	names, hasNames := claims["_claim_names"]
	sources, hasSources := claims["_claim_sources"]
	if hasNames != hasSources {
		report(r, checkUserinfoClaimSources, Failure, "_claim_names and _claim_sources must come together")
		return
	}
	if !hasNames {
		return
	}
	nameMap, ok1 := names.(map[string]any)
	sourceMap, ok2 := sources.(map[string]any)
	if !ok1 || !ok2 {
		report(r, checkUserinfoClaimSources, Failure, "_claim_names and _claim_sources must be JSON objects")
		return
	}
	referenced := map[string]bool{}
	for claim, source := range nameMap {
		s, _ := source.(string)
		if _, exists := sourceMap[s]; !exists {
			report(r, checkUserinfoClaimSources, Failure, "claim %s names the source %q, which _claim_sources lacks", claim, s)
		}
		referenced[s] = true
	}
	for source := range sourceMap {
		if !referenced[source] {
			report(r, checkUserinfoClaimSources, Failure, "source %q is referenced by no claim", source)
		}
	}
}

// checkUnauthorizedUserinfoExtra records the EXTRA findings on userinfo
// responses to a request without a token and with an invalid one.
func checkUnauthorizedUserinfoExtra(r recorder, missing, invalid *httpResult) {
	for _, c := range []struct {
		result      *httpResult
		description string
		wantError   bool
	}{{missing, "no access token", false}, {invalid, "an invalid access token", true}} {
		if c.result.Err != nil {
			continue
		}
		challenge := c.result.Header.Get("WWW-Authenticate")
		switch {
		case c.result.Status != http.StatusUnauthorized:
			report(r, checkUserinfoWWWAuthenticateExtra, Extra, "userinfo answered %s with status %d, expected 401", c.description, c.result.Status)
		case !strings.HasPrefix(strings.ToLower(challenge), "bearer"):
			report(r, checkUserinfoWWWAuthenticateExtra, Extra, "userinfo answered %s with WWW-Authenticate %q, expected a Bearer challenge", c.description, challenge)
		case c.wantError && !strings.Contains(challenge, `error="invalid_token"`):
			report(r, checkUserinfoWWWAuthenticateExtra, Extra, "userinfo answered %s with WWW-Authenticate %q, without error=\"invalid_token\"", c.description, challenge)
		}
	}
}

var (
	checkScopeClaimsUserinfo = defineCheck("VerifyScopesReturnedInUserInfoClaims",
		"userinfo has every claim of the requested scopes")
	checkScopeClaimsIDToken = defineCheck("VerifyScopesReturnedInAuthorizationEndpointIdToken",
		"the ID token has every claim of the requested scopes when no access token is issued")
	checkEmailNotInIDToken = defineCheck("EnsureIdTokenDoesNotContainEmailForScopeEmail",
		"with an access token, scope email puts email in userinfo, not the ID token")
	checkNameNotInUserinfo = defineCheck("EnsureUserInfoDoesNotContainName",
		"userinfo has no name when profile was not requested")
	checkUserinfoHasName = defineCheck("EnsureUserInfoContainsName",
		"userinfo has the name claim requested as essential")
	checkIDTokenHasName = defineCheck("EnsureIdTokenContainsName",
		"the ID token has the name claim requested as essential")
)

// checkScopeClaims warns about claims of the requested scopes that are
// missing (OpenID Connect Core §5.4).
func checkScopeClaims(r recorder, c *Check, claims map[string]any, scopes []string, where string) {
	var missing []string
	for _, scope := range scopes {
		for _, claim := range scopeClaims[scope] {
			if _, present := claims[claim]; !present {
				missing = append(missing, claim)
			}
		}
	}
	if len(missing) > 0 {
		report(r, c, Warning, "%s lacks claims of the requested scopes: %s", where, strings.Join(missing, ", "))
	}
}

func scopeList(scope string) []string {
	return slices.DeleteFunc(strings.Fields(scope), func(s string) bool { return s == "" })
}
