package conformance

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// clockSkew is the tolerance of the official suite's time checks.
const clockSkew = 5 * time.Minute

var (
	checkExtractIDTokenFromAuthorization = defineCheck("ExtractIdTokenFromAuthorizationResponse",
		"an authorization response whose response_type has id_token carries an id_token that parses as a JWT")
	checkExtractIDTokenFromToken = defineCheck("ExtractIdTokenFromTokenResponse",
		"the token response of the authorization_code grant carries an id_token that parses as a JWT")
	checkValidateIDToken = defineCheck("ValidateIdToken",
		"iss, aud, exp, iat and auth_time of the ID token hold (OpenID Connect Core §3.1.3.7)")
	checkIDTokenNonce = defineCheck("ValidateIdTokenNonce",
		"the ID token's nonce equals the request's, and is absent when none was sent")
	checkIDTokenACR = defineCheck("ValidateIdTokenACRClaimAgainstRequest",
		"acr, if present, is a non-empty string")
	checkIDTokenSignature = defineCheck("ValidateIdTokenSignature",
		"a key of the provider's JWK set verifies the ID token's signature")
	checkIDTokenSignatureKid = defineCheck("ValidateIdTokenSignatureUsingKid",
		"with a kid in the header, the one key with that kid verifies the ID token")
	checkIDTokenSubject = defineCheck("CheckForSubjectInIdToken",
		"sub is present, non-empty, at most 255 characters of printable ASCII")
	checkIDTokenStandardClaims = defineCheck("ValidateIdTokenStandardClaims",
		"identity claims in the ID token have the types OpenID Connect Core §5.1 gives them")
	checkExtractAtHash = defineCheck("ExtractAtHash",
		"an ID token issued with an access token by the authorization endpoint has at_hash")
	checkValidateAtHash = defineCheck("ValidateAtHash",
		"at_hash matches the access token")
	checkExtractCHash = defineCheck("ExtractCHash",
		"an ID token issued with a code by the authorization endpoint has c_hash")
	checkValidateCHash = defineCheck("ValidateCHash",
		"c_hash matches the code")
	checkIDTokenNoName = defineCheck("EnsureIdTokenDoesNotContainName",
		"the ID token carries no name claim when none was requested")
	checkIDTokenNonRequestedClaims = defineCheck("EnsureIdTokenDoesNotContainNonRequestedClaims",
		"the ID token carries only the registered claims and those of the requested scopes")
	checkIDTokenAzp = defineCheck("ExtraIdTokenAzpWithMultipleAudiences",
		"an ID token with several audiences has azp equal to the client_id (OpenID Connect Core §2)")
)

// idTokenExpectations are the values a module checks an ID token against.
type idTokenExpectations struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	Keys         []jose.JSONWebKey
	// Nonce is the nonce sent; empty means the token must carry none.
	Nonce string
	// SkipNonce skips the nonce check, for refreshed ID tokens, whose
	// nonce OpenID Connect Core §12.2 does not fix.
	SkipNonce bool
	Now       time.Time
}

// extractIDToken checks that raw is present and parses as a JWT.
func extractIDToken(r recorder, c *Check, raw string) *jwtToken {
	if raw == "" {
		report(r, c, Fatal, "no id_token in the response")
		return nil
	}
	token, err := parseJWT(raw)
	if err != nil {
		report(r, c, Fatal, "the id_token does not parse as a JWT: %v", err)
		return nil
	}
	return token
}

// checkIDToken makes the standard ID token checks that every module makes
// on every ID token (OpenID Connect Core §3.1.3.7, §2).
func checkIDToken(r recorder, token *jwtToken, want idTokenExpectations) {
	if token.Encrypted {
		report(r, checkIDTokenSignature, Failure, "the ID token is encrypted, but the client registered no encryption")
		return
	}
	checkIDTokenTimesAndAudience(r, token, want)
	if !want.SkipNonce {
		checkIDTokenNonceValue(r, token, want.Nonce)
	}
	if acr, present := token.Claims["acr"]; present {
		if s, ok := acr.(string); !ok || s == "" {
			report(r, checkIDTokenACR, Failure, "acr is %s, expected a non-empty string", compactJSON(acr))
		}
	}
	if err := verifyJWS(token, want.Keys, want.ClientSecret, false); err != nil {
		report(r, checkIDTokenSignature, Failure, "%v", err)
	}
	if token.kid() != "" {
		if err := verifyJWS(token, want.Keys, want.ClientSecret, true); err != nil {
			report(r, checkIDTokenSignatureKid, Failure, "%v", err)
		}
	}
	checkSubject(r, checkIDTokenSubject, token.Claims["sub"])
	checkStandardClaims(r, checkIDTokenStandardClaims, token.Claims, want.Now)

	if audiences := token.audiences(); len(audiences) > 1 && token.str("azp") != want.ClientID {
		report(r, checkIDTokenAzp, Extra, "aud has %d values but azp is %q, expected the client_id %q", len(audiences), token.str("azp"), want.ClientID)
	}
}

func checkIDTokenTimesAndAudience(r recorder, token *jwtToken, want idTokenExpectations) {
	if iss := token.str("iss"); iss != want.Issuer {
		report(r, checkValidateIDToken, Failure, "iss is %q, expected the issuer %q", iss, want.Issuer)
	}
	switch aud := token.Claims["aud"].(type) {
	case string:
		if aud != want.ClientID {
			report(r, checkValidateIDToken, Failure, "aud is %q, expected the client_id %q", aud, want.ClientID)
		}
	case []any:
		if !slices.Contains(token.audiences(), want.ClientID) {
			report(r, checkValidateIDToken, Failure, "aud %s does not contain the client_id %q", compactJSON(aud), want.ClientID)
		}
	default:
		report(r, checkValidateIDToken, Failure, "aud is missing or neither a string nor an array")
	}

	now := want.Now
	if exp, ok := token.number("exp"); !ok {
		report(r, checkValidateIDToken, Failure, "exp is missing or not a number")
	} else if expiry := unixTime(exp); expiry.Before(now.Add(-clockSkew)) {
		report(r, checkValidateIDToken, Failure, "exp %s is in the past", expiry.Format(time.RFC3339))
	} else if expiry.After(now.AddDate(50, 0, 0)) {
		report(r, checkValidateIDToken, Failure, "exp %s is more than 50 years ahead; is it in milliseconds?", expiry.Format(time.RFC3339))
	}
	if iat, ok := token.number("iat"); !ok {
		report(r, checkValidateIDToken, Failure, "iat is missing or not a number")
	} else if issued := unixTime(iat); issued.After(now.Add(clockSkew)) {
		report(r, checkValidateIDToken, Failure, "iat %s is in the future", issued.Format(time.RFC3339))
	} else if issued.Before(now.Add(-clockSkew)) {
		report(r, checkValidateIDToken, Failure, "iat %s is more than 5 minutes in the past", issued.Format(time.RFC3339))
	}
	if value, present := token.Claims["auth_time"]; present {
		authTime, ok := value.(float64)
		switch {
		case !ok:
			report(r, checkValidateIDToken, Failure, "auth_time is %s, not a number", compactJSON(value))
		case unixTime(authTime).After(now.Add(clockSkew)):
			report(r, checkValidateIDToken, Failure, "auth_time %s is in the future", unixTime(authTime).Format(time.RFC3339))
		case unixTime(authTime).Before(now.AddDate(-1, 0, 0)):
			report(r, checkValidateIDToken, Failure, "auth_time %s is more than a year old", unixTime(authTime).Format(time.RFC3339))
		}
	}
	if nbf, ok := token.number("nbf"); ok && unixTime(nbf).After(now.Add(clockSkew)) {
		report(r, checkValidateIDToken, Info, "nbf %s is in the future", unixTime(nbf).Format(time.RFC3339))
	}
}

func checkIDTokenNonceValue(r recorder, token *jwtToken, nonce string) {
	got, present := token.Claims["nonce"]
	switch {
	case nonce == "" && present:
		report(r, checkIDTokenNonce, Failure, "the ID token has nonce %s, but the request sent none", compactJSON(got))
	case nonce != "" && got != nonce:
		report(r, checkIDTokenNonce, Failure, "nonce is %s, expected %q", compactJSON(got), nonce)
	}
}

// checkSubject checks a sub claim (OpenID Connect Core §2: at most 255
// ASCII characters).
func checkSubject(r recorder, c *Check, value any) {
	sub, ok := value.(string)
	switch {
	case !ok || sub == "":
		report(r, c, Failure, "sub is missing or not a non-empty string")
	case len(sub) > 255:
		report(r, c, Failure, "sub is %d characters long, more than 255", len(sub))
	case !printableASCII(sub):
		report(r, c, Failure, "sub %q has characters outside printable ASCII", sub)
	}
}

var (
	standardStringClaims = []string{"name", "given_name", "family_name", "middle_name", "nickname",
		"preferred_username", "profile", "picture", "website", "email", "gender", "zoneinfo", "locale", "phone_number"}
	addressMembers   = []string{"formatted", "street_address", "locality", "region", "postal_code", "country"}
	birthdatePattern = regexp.MustCompile(`^(\d{4})(-(\d{2})-(\d{2}))?$`)
)

// updatedAtFloor is 1990-01-01, before which an updated_at is implausible.
var updatedAtFloor = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// checkStandardClaims checks the types of the standard claims of OpenID
// Connect Core §5.1 that are present in claims.
func checkStandardClaims(r recorder, c *Check, claims map[string]any, now time.Time) {
	for _, name := range standardStringClaims {
		value, present := claims[name]
		if !present {
			continue
		}
		if s, ok := value.(string); !ok || s == "" || s == "null" {
			report(r, c, Failure, "%s is %s, expected a non-empty string", name, compactJSON(value))
		}
	}
	for _, name := range []string{"email_verified", "phone_number_verified"} {
		if value, present := claims[name]; present {
			if _, ok := value.(bool); !ok {
				report(r, c, Failure, "%s is %s, expected a boolean", name, compactJSON(value))
			}
		}
	}
	if value, present := claims["updated_at"]; present {
		seconds, ok := value.(float64)
		switch {
		case !ok:
			report(r, c, Failure, "updated_at is %s, expected a number of seconds", compactJSON(value))
		case unixTime(seconds).Before(updatedAtFloor):
			report(r, c, Failure, "updated_at %s is before 1990", unixTime(seconds).Format(time.RFC3339))
		case unixTime(seconds).After(now.Add(clockSkew)):
			report(r, c, Failure, "updated_at %s is in the future", unixTime(seconds).Format(time.RFC3339))
		}
	}
	if value, present := claims["address"]; present {
		checkAddressClaim(r, c, value)
	}
	if value, present := claims["birthdate"]; present {
		checkBirthdate(r, c, value, now)
	}
}

func checkAddressClaim(r recorder, c *Check, value any) {
	address, ok := value.(map[string]any)
	if !ok {
		report(r, c, Failure, "address is %s, expected a JSON object", compactJSON(value))
		return
	}
	for name, member := range address {
		if !slices.Contains(addressMembers, name) {
			continue
		}
		if s, ok := member.(string); !ok || s == "" {
			report(r, c, Failure, "address.%s is %s, expected a non-empty string", name, compactJSON(member))
		}
	}
}

func checkBirthdate(r recorder, c *Check, value any, now time.Time) {
	s, _ := value.(string)
	match := birthdatePattern.FindStringSubmatch(s)
	if match == nil {
		report(r, c, Failure, "birthdate is %s, expected YYYY-MM-DD, 0000-MM-DD or YYYY", compactJSON(value))
		return
	}
	year, _ := strconv.Atoi(match[1])
	if year != 0 && (year < 1850 || year > now.Year()) {
		report(r, c, Failure, "birthdate %q has a year outside 1850 to %d", s, now.Year())
	}
	if year == 0 && match[2] == "" {
		report(r, c, Failure, "birthdate %q has year 0000 without a month and day", s)
	}
	if match[2] != "" {
		// Year 0000 stands for an unknown year, so any leap day is allowed.
		parseYear := year
		if year == 0 {
			parseYear = 2000
		}
		if _, err := time.Parse("2006-01-02", fmt.Sprintf("%04d%s", parseYear, match[2])); err != nil {
			report(r, c, Failure, "birthdate %q is not a valid date", s)
		}
	}
}

// checkHashClaim checks at_hash or c_hash of token against value. A missing
// claim fails only when required.
func checkHashClaim(r recorder, token *jwtToken, claim, value string, required bool) {
	extract, validate := checkExtractAtHash, checkValidateAtHash
	if claim == "c_hash" {
		extract, validate = checkExtractCHash, checkValidateCHash
	}
	got, present := token.Claims[claim]
	if !present {
		if required {
			report(r, extract, Failure, "the ID token has no %s", claim)
		}
		return
	}
	expected, err := halfHash(token.alg(), value)
	if err != nil {
		report(r, validate, Failure, "%s cannot be checked: %v", claim, err)
		return
	}
	if got != expected {
		report(r, validate, Failure, "%s is %s, expected %q", claim, compactJSON(got), expected)
	}
}

// registeredIDTokenClaims are the claims any ID token may carry, as the
// official suite lists them for EnsureIdTokenDoesNotContainNonRequestedClaims.
var registeredIDTokenClaims = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
	"azp", "at_hash", "c_hash", "s_hash", "nbf", "jti", "sid", "txn", "openbanking_intent_id"}

// scopeClaims are the claims of each standard scope (OpenID Connect Core
// §5.4).
var scopeClaims = map[string][]string{
	"openid": {"sub"},
	"profile": {"name", "given_name", "family_name", "middle_name", "nickname", "profile", "picture", "website",
		"gender", "birthdate", "zoneinfo", "locale", "updated_at", "preferred_username"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

// checkNoUnrequestedClaims makes the two warnings of oidcc-server about
// claims the request did not ask for.
func checkNoUnrequestedClaims(r recorder, token *jwtToken, scopes []string) {
	if _, present := token.Claims["name"]; present && !slices.Contains(scopes, "profile") {
		report(r, checkIDTokenNoName, Warning, "the ID token has a name claim, which was not requested")
	}
	allowed := slices.Clone(registeredIDTokenClaims)
	for _, scope := range scopes {
		allowed = append(allowed, scopeClaims[scope]...)
	}
	var extra []string
	for name := range token.Claims {
		if !slices.Contains(allowed, name) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		report(r, checkIDTokenNonRequestedClaims, Warning, "the ID token has claims that were not requested: %s", strings.Join(extra, ", "))
	}
}

func unixTime(seconds float64) time.Time {
	return time.Unix(int64(seconds), 0)
}
