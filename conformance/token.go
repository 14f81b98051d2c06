package conformance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// tokenResponse is a token endpoint response.
type tokenResponse struct {
	*httpResult
	JSON map[string]any
}

func (t *tokenResponse) str(name string) string {
	s, _ := t.JSON[name].(string)
	return s
}

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionAudience is the aud of private_key_jwt assertions; empty means
// the token endpoint.
type tokenCallOptions struct {
	assertionAudience string
}

// callToken posts form to the token endpoint with the client's
// authentication (RFC 6749 §2.3, OpenID Connect Core §9).
func (m *moduleRun) callToken(c *client, form url.Values, options tokenCallOptions) *tokenResponse {
	endpoint := m.config.str("token_endpoint")
	form = cloneValues(form)
	header := http.Header{}
	switch c.AuthMethod {
	case "client_secret_basic":
		credentials := url.QueryEscape(c.ID) + ":" + url.QueryEscape(c.Secret)
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(credentials)))
	case "client_secret_post":
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	case "private_key_jwt":
		audience := options.assertionAudience
		if audience == "" {
			audience = endpoint
		}
		assertion, err := signClientAssertion(c, audience)
		if err != nil {
			return &tokenResponse{httpResult: &httpResult{Method: http.MethodPost, URL: endpoint, Err: err}}
		}
		form.Set("client_assertion_type", clientAssertionType)
		form.Set("client_assertion", assertion)
	default:
		form.Set("client_id", c.ID)
	}
	return m.postToken(endpoint, form, header)
}

func (m *moduleRun) postToken(endpoint string, form url.Values, header http.Header) *tokenResponse {
	req, err := http.NewRequestWithContext(m.ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return &tokenResponse{httpResult: &httpResult{URL: endpoint, Err: err}}
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	result := &tokenResponse{httpResult: m.h.send(req)}
	_ = json.Unmarshal(result.Body, &result.JSON)
	return result
}

// signClientAssertion makes a private_key_jwt assertion as the official
// suite does: RS256, iss = sub = client_id, a 20-character jti, valid 60s,
// and no kid unless the client's key has one. It fails when the client has
// no private key, as static clients never do.
func signClientAssertion(c *client, audience string) (string, error) {
	if c.Key == nil {
		return "", fmt.Errorf("client %s has no private key to sign a private_key_jwt assertion: the harness registers keys only for dynamic clients", c.ID)
	}
	options := &jose.SignerOptions{}
	if c.KeyID != "" {
		options = options.WithHeader("kid", c.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: c.Key}, options)
	if err != nil {
		return "", fmt.Errorf("sign the client assertion of client %s: %w", c.ID, err)
	}
	now := time.Now()
	claims := map[string]any{
		"iss": c.ID, "sub": c.ID, "aud": audience, "jti": randomString(20),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(60 * time.Second).Unix(),
	}
	assertion, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign the client assertion of client %s: %w", c.ID, err)
	}
	return assertion, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for name, values := range v {
		out[name] = append([]string(nil), values...)
	}
	return out
}

var (
	checkTokenStatus200 = defineCheck("CheckTokenEndpointHttpStatus200",
		"the token endpoint answers 200")
	checkTokenJSON = defineCheck("CallTokenEndpoint",
		"the token endpoint answers with a non-empty JSON object")
	checkTokenNoError = defineCheck("CheckIfTokenEndpointResponseError",
		"a successful token response has no error member")
	checkTokenAccessToken = defineCheck("CheckForAccessTokenValue",
		"the token response has non-empty access_token and token_type")
	checkExpiresInPresent = defineCheck("ExtractExpiresInFromTokenEndpointResponse",
		"the token response has expires_in")
	checkExpiresInValid = defineCheck("ValidateExpiresIn",
		"expires_in is a positive number of at most one year")
	checkRefreshTokenPresent = defineCheck("CheckForRefreshTokenValue",
		"the token response has a refresh_token")
	checkTokenCacheControlExtra = defineCheck("ExtraTokenResponseCacheControlNoStore",
		"every token response has Cache-Control: no-store (RFC 6749 §5.1)")
	checkTokenPragmaExtra = defineCheck("ExtraTokenResponsePragmaNoCache",
		"every token response has Pragma: no-cache (RFC 6749 §5.1)")
	checkTokenContentTypeExtra = defineCheck("ExtraTokenResponseContentTypeJson",
		"every successful token response has Content-Type application/json (RFC 6749 §5.1)")
	checkTokenTypeBearerExtra = defineCheck("ExtraTokenTypeIsBearer",
		"token_type is Bearer on every token response")
	checkHybridSubject = defineCheck("VerifyIdTokenSubConsistentHybridFlow",
		"the ID tokens of the authorization and token endpoints have the same sub")
)

// checkTokenSuccess makes the checks of a successful token response of the
// authorization_code grant (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
// expiresMissing is the severity of a missing expires_in.
func checkTokenSuccess(r recorder, t *tokenResponse, expiresMissing Severity) {
	if t.Err != nil {
		report(r, checkTokenStatus200, Fatal, "POST %s failed: %v", t.URL, t.Err)
		return
	}
	if t.Status != http.StatusOK {
		report(r, checkTokenStatus200, Fatal, "the token endpoint responded with status %d: %s", t.Status, describeBody(t.Header, t.Body))
		return
	}
	if len(t.JSON) == 0 {
		report(r, checkTokenJSON, Fatal, "the token response is not a non-empty JSON object: %s", describeBody(t.Header, t.Body))
		return
	}
	if _, present := t.JSON["error"]; present {
		report(r, checkTokenNoError, Fatal, "the token response has error %s", compactJSON(t.JSON["error"]))
		return
	}
	if t.str("access_token") == "" || t.str("token_type") == "" {
		report(r, checkTokenAccessToken, Fatal, "the token response lacks access_token or token_type")
		return
	}
	checkExpiresIn(r, t, expiresMissing)
	if t.str("refresh_token") == "" {
		report(r, checkRefreshTokenPresent, Info, "no refresh_token was issued")
	}
	checkTokenHeadersExtra(r, t)
}

func checkExpiresIn(r recorder, t *tokenResponse, missing Severity) {
	value, present := t.JSON["expires_in"]
	if !present {
		report(r, checkExpiresInPresent, missing, "the token response has no expires_in")
		return
	}
	seconds, ok := value.(float64)
	if !ok || seconds <= 0 || seconds > 365*24*3600 {
		report(r, checkExpiresInValid, Failure, "expires_in is %s, expected a positive number of seconds up to one year", compactJSON(value))
	}
}

// checkTokenHeadersExtra records the EXTRA findings on a successful token
// response that the official suite checks only on refresh.
func checkTokenHeadersExtra(r recorder, t *tokenResponse) {
	if !hasHeaderToken(t.Header, "Cache-Control", "no-store") {
		report(r, checkTokenCacheControlExtra, Extra, "the token response has Cache-Control %q, without no-store", t.Header.Get("Cache-Control"))
	}
	if !hasHeaderToken(t.Header, "Pragma", "no-cache") {
		report(r, checkTokenPragmaExtra, Extra, "the token response has Pragma %q, not no-cache", t.Header.Get("Pragma"))
	}
	if mediaType(t.Header) != "application/json" {
		report(r, checkTokenContentTypeExtra, Extra, "the token response has Content-Type %q", t.Header.Get("Content-Type"))
	}
	if !strings.EqualFold(t.str("token_type"), "bearer") {
		report(r, checkTokenTypeBearerExtra, Extra, "token_type is %q, not Bearer", t.str("token_type"))
	}
}

var (
	checkRefreshStatus      = checkTokenStatus200
	checkRefreshContentType = defineCheck("CheckTokenEndpointReturnedJsonContentType",
		"the refresh response has Content-Type application/json")
	checkRefreshCacheControl = defineCheck("CheckTokenEndpointCacheHeaders",
		"the refresh response has Cache-Control: no-store")
	checkRefreshTokenType = defineCheck("CheckTokenTypeIsBearer",
		"token_type of the refresh response is Bearer, case-insensitive")
	checkAccessTokenEntropy = defineCheck("EnsureMinimumAccessTokenEntropy",
		"the access token has more than 96 bits of entropy")
	checkAccessTokenCharacters = defineCheck("EnsureAccessTokenContainsAllowedCharactersOnly",
		"the access token uses only printable ASCII")
	checkRefreshTokenCharacters = defineCheck("EnsureRefreshTokenContainsAllowedCharactersOnly",
		"the refresh token uses only printable ASCII")
	checkRefreshTokenLength = defineCheck("EnsureMinimumRefreshTokenLength",
		"the refresh token is at least 128 bits (16 bytes) long")
	checkRefreshTokenEntropy = defineCheck("EnsureMinimumRefreshTokenEntropy",
		"the refresh token has more than 96 bits of entropy")
	checkCompareIDTokenClaims = defineCheck("CompareIdTokenClaims",
		"a refreshed ID token keeps iss, sub, aud, auth_time and azp, and has a new iat (OpenID Connect Core §12.2)")
)

// checkRefreshResponse makes the checks of the refresh-token steps on a
// refresh response (RFC 6749 §6, §5.1).
func checkRefreshResponse(r recorder, t *tokenResponse) {
	if t.Err != nil {
		report(r, checkRefreshStatus, Fatal, "POST %s failed: %v", t.URL, t.Err)
		return
	}
	if t.Status != http.StatusOK {
		report(r, checkRefreshStatus, Failure, "the refresh responded with status %d: %s", t.Status, describeBody(t.Header, t.Body))
	}
	if mediaType(t.Header) != "application/json" {
		report(r, checkRefreshContentType, Failure, "the refresh response has Content-Type %q", t.Header.Get("Content-Type"))
	}
	if !hasHeaderToken(t.Header, "Cache-Control", "no-store") {
		report(r, checkRefreshCacheControl, Failure, "the refresh response has Cache-Control %q, without no-store", t.Header.Get("Cache-Control"))
	}
	if _, present := t.JSON["error"]; present {
		report(r, checkTokenNoError, Fatal, "the refresh response has error %s: %s", compactJSON(t.JSON["error"]), compactJSON(t.JSON["error_description"]))
	}
	accessToken := t.str("access_token")
	if accessToken == "" {
		report(r, checkTokenAccessToken, Fatal, "the refresh response has no access_token")
	}
	if !strings.EqualFold(t.str("token_type"), "bearer") {
		report(r, checkRefreshTokenType, Failure, "token_type is %q, expected Bearer", t.str("token_type"))
	}
	checkAccessTokenStrength(r, accessToken)
	checkExpiresIn(r, t, Warning)
	if refresh := t.str("refresh_token"); refresh != "" {
		checkRefreshTokenStrength(r, refresh)
	}
}

func checkAccessTokenStrength(r recorder, token string) {
	if bits := shannonBits(token); bits <= 96 {
		report(r, checkAccessTokenEntropy, Failure, "the access token has about %.0f bits of entropy, not more than 96", bits)
	}
	if !printableASCII(token) {
		report(r, checkAccessTokenCharacters, Failure, "the access token has characters outside %%x20-7E")
	}
}

func checkRefreshTokenStrength(r recorder, token string) {
	if !printableASCII(token) {
		report(r, checkRefreshTokenCharacters, Failure, "the refresh token has characters outside %%x20-7E")
	}
	if len(token) < 16 {
		report(r, checkRefreshTokenLength, Failure, "the refresh token is %d bytes long, less than 16", len(token))
	}
	if bits := shannonBits(token); bits <= 96 {
		report(r, checkRefreshTokenEntropy, Failure, "the refresh token has about %.0f bits of entropy, not more than 96", bits)
	}
}

// compareIDTokenClaims compares a refreshed ID token with the first one
// (OpenID Connect Core §12.2).
func compareIDTokenClaims(r recorder, first, second *jwtToken) {
	for _, name := range []string{"iss", "sub"} {
		if first.str(name) != second.str(name) {
			report(r, checkCompareIDTokenClaims, Failure, "%s changed from %q to %q", name, first.str(name), second.str(name))
		}
	}
	firstIat, _ := first.number("iat")
	secondIat, _ := second.number("iat")
	if firstIat == secondIat {
		report(r, checkCompareIDTokenClaims, Failure, "iat did not change (%v)", firstIat)
	}
	if !sameSet(first.audiences(), second.audiences()) {
		report(r, checkCompareIDTokenClaims, Failure, "aud changed from %v to %v", first.audiences(), second.audiences())
	}
	if second2, present := second.Claims["auth_time"]; present {
		if first1, had := first.Claims["auth_time"]; !had || first1 != second2 {
			report(r, checkCompareIDTokenClaims, Failure, "auth_time changed from %s to %s", compactJSON(first.Claims["auth_time"]), compactJSON(second2))
		}
	}
	firstAzp, hadAzp := first.Claims["azp"]
	secondAzp, hasAzp := second.Claims["azp"]
	if hadAzp != hasAzp || firstAzp != secondAzp {
		report(r, checkCompareIDTokenClaims, Failure, "azp changed from %s to %s", compactJSON(firstAzp), compactJSON(secondAzp))
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
		if seen[s] < 0 {
			return false
		}
	}
	return true
}

var (
	checkTokenErrorStatus = defineCheck("CheckTokenEndpointHttpStatus400",
		"a token error answers 400, or 401 for invalid_client (RFC 6749 §5.2)")
	checkTokenErrorContentType = defineCheck("CheckTokenEndpointReturnedJsonContentTypeForError",
		"a token error has Content-Type application/json")
	checkTokenErrorCode = defineCheck("CheckErrorFromTokenEndpointResponseError",
		"the token error is the one the request calls for")
	checkTokenErrorChars = defineCheck("ValidateErrorFromTokenEndpointResponseError",
		"the token error's error is present and uses only the characters RFC 6749 §5.2 allows")
	checkTokenErrorDescriptionChars = defineCheck("ValidateErrorDescriptionFromTokenEndpointResponseError",
		"the token error's error_description uses only the characters RFC 6749 §5.2 allows")
	checkTokenErrorDescriptionCRLF = defineCheck("CheckErrorDescriptionFromTokenEndpointResponseErrorContainsCRLFTAB",
		"the token error's error_description has no CR, LF or TAB")
	checkTokenErrorURIChars = defineCheck("ValidateErrorUriFromTokenEndpointResponseError",
		"the token error's error_uri is a URL of the characters RFC 6749 §5.2 allows")
	checkTokenWWWAuthenticateExtra = defineCheck("ExtraTokenInvalidClientWWWAuthenticate",
		"a 401 invalid_client after HTTP Basic authentication has WWW-Authenticate (RFC 6749 §5.2)")
)

// checkTokenError makes the checks of a token error response that must be
// expectedError (RFC 6749 §5.2).
func checkTokenError(r recorder, t *tokenResponse, expectedError string) {
	if t.Err != nil {
		report(r, checkTokenErrorStatus, Failure, "POST %s failed: %v", t.URL, t.Err)
		return
	}
	errorCode, _ := t.JSON["error"].(string)
	if t.Status != http.StatusBadRequest && !(t.Status == http.StatusUnauthorized && errorCode == "invalid_client") {
		report(r, checkTokenErrorStatus, Failure, "the token endpoint responded with status %d, expected 400 with error %s", t.Status, expectedError)
	}
	if mediaType(t.Header) != "application/json" {
		report(r, checkTokenErrorContentType, Failure, "the token error has Content-Type %q", t.Header.Get("Content-Type"))
	}
	if errorCode != expectedError {
		report(r, checkTokenErrorCode, Failure, "error is %s, expected %q", compactJSON(t.JSON["error"]), expectedError)
	}
	if errorCode == "" || !validErrorCode(errorCode) {
		report(r, checkTokenErrorChars, Failure, "error %s is missing or has characters outside %%x20-21 / %%x23-5B / %%x5D-7E", compactJSON(t.JSON["error"]))
	}
	description, _ := t.JSON["error_description"].(string)
	uri, hasURI := t.JSON["error_uri"].(string)
	checkErrorFields(r, description, hasURI, uri, checkTokenErrorDescriptionCRLF, checkTokenErrorDescriptionChars, checkTokenErrorURIChars)
}
