package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var (
	testKeyOnce sync.Once
	testKey     *rsa.PrivateKey
)

// signingKey returns an RSA key shared by the tests, whose public JWK has
// kid "test-key".
func signingKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	testKeyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return testKey
}

func testJWKS(t testing.TB) []jose.JSONWebKey {
	return []jose.JSONWebKey{{Key: signingKey(t).Public(), KeyID: "test-key", Use: "sig", Algorithm: "RS256"}}
}

// signToken signs claims with the test key, RS256 and kid "test-key"
// unless header changes them.
func signToken(t testing.TB, claims map[string]any, header map[string]any) string {
	t.Helper()
	options := &jose.SignerOptions{}
	kid := "test-key"
	if v, ok := header["kid"]; ok {
		kid, _ = v.(string)
	}
	if kid != "" {
		options = options.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signingKey(t)}, options)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	signed, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := signed.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return compact
}

func mustParse(t testing.TB, raw string) *jwtToken {
	t.Helper()
	token, err := parseJWT(raw)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

const (
	testClientID = "client-1"
	testNonce    = "nonce-value"
)

func validIDTokenClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "user-1", "aud": testClientID, "nonce": testNonce,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Add(-time.Minute).Unix(),
	}
}

func expectations(t testing.TB, now time.Time) idTokenExpectations {
	return idTokenExpectations{Issuer: testIssuer, ClientID: testClientID, Keys: testJWKS(t), Nonce: testNonce, Now: now}
}

func TestCheckIDToken(t *testing.T) {
	now := time.Now()
	t.Run("valid token", func(t *testing.T) {
		var findings findingList
		checkIDToken(&findings, mustParse(t, signToken(t, validIDTokenClaims(now), nil)), expectations(t, now))
		expectNoFailure(t, findings)
	})

	cases := []struct {
		name     string
		mutate   func(map[string]any)
		header   map[string]any
		check    *Check
		severity Severity
	}{
		{"wrong iss", func(c map[string]any) { c["iss"] = "https://evil.example.com" }, nil, checkValidateIDToken, Failure},
		{"aud without client", func(c map[string]any) { c["aud"] = []any{"other"} }, nil, checkValidateIDToken, Failure},
		{"expired", func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }, nil, checkValidateIDToken, Failure},
		{"exp in milliseconds", func(c map[string]any) { c["exp"] = now.UnixMilli() }, nil, checkValidateIDToken, Failure},
		{"old iat", func(c map[string]any) { c["iat"] = now.Add(-time.Hour).Unix() }, nil, checkValidateIDToken, Failure},
		{"future auth_time", func(c map[string]any) { c["auth_time"] = now.Add(time.Hour).Unix() }, nil, checkValidateIDToken, Failure},
		{"wrong nonce", func(c map[string]any) { c["nonce"] = "other" }, nil, checkIDTokenNonce, Failure},
		{"empty acr", func(c map[string]any) { c["acr"] = "" }, nil, checkIDTokenACR, Failure},
		{"long sub", func(c map[string]any) { c["sub"] = strings.Repeat("a", 256) }, nil, checkIDTokenSubject, Failure},
		{"email_verified as string", func(c map[string]any) { c["email_verified"] = "true" }, nil, checkIDTokenStandardClaims, Failure},
		{"unknown kid", nil, map[string]any{"kid": "rotated"}, checkIDTokenSignatureKid, Failure},
		{"several audiences without azp", func(c map[string]any) { c["aud"] = []any{testClientID, "api"} }, nil, checkIDTokenAzp, Extra},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims := validIDTokenClaims(now)
			if c.mutate != nil {
				c.mutate(claims)
			}
			var findings findingList
			checkIDToken(&findings, mustParse(t, signToken(t, claims, c.header)), expectations(t, now))
			expectFinding(t, findings, c.check, c.severity)
		})
	}

	t.Run("nonce where none was sent", func(t *testing.T) {
		want := expectations(t, now)
		want.Nonce = ""
		var findings findingList
		checkIDToken(&findings, mustParse(t, signToken(t, validIDTokenClaims(now), nil)), want)
		expectFinding(t, findings, checkIDTokenNonce, Failure)
	})

	t.Run("signature of another key", func(t *testing.T) {
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		want := expectations(t, now)
		want.Keys = []jose.JSONWebKey{{Key: other.Public(), KeyID: "test-key", Use: "sig"}}
		var findings findingList
		checkIDToken(&findings, mustParse(t, signToken(t, validIDTokenClaims(now), nil)), want)
		expectFinding(t, findings, checkIDTokenSignature, Failure)
		expectFinding(t, findings, checkIDTokenSignatureKid, Failure)
	})
}

func TestExtractIDToken(t *testing.T) {
	for _, c := range []*Check{checkExtractIDTokenFromAuthorization, checkExtractIDTokenFromToken} {
		for _, raw := range []string{"", "not-a-jwt"} {
			var findings findingList
			if extractIDToken(&findings, c, raw) != nil {
				t.Errorf("%q was extracted", raw)
			}
			expectFinding(t, findings, c, Fatal)
		}
	}
}

func TestStandardClaims(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name  string
		claim string
		value any
	}{
		{"null string", "name", "null"},
		{"updated_at before 1990", "updated_at", 100.0},
		{"updated_at as string", "updated_at", "2020"},
		{"address as string", "address", "1 Main St"},
		{"address member as number", "address", map[string]any{"locality": 5.0}},
		{"birthdate format", "birthdate", "01/02/1990"},
		{"birthdate year", "birthdate", "1700-01-01"},
		{"birthdate day", "birthdate", "1990-02-30"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			checkStandardClaims(&findings, checkUserinfoStandardClaims, map[string]any{c.claim: c.value}, now)
			expectFinding(t, findings, checkUserinfoStandardClaims, Failure)
		})
	}

	var ok findingList
	checkStandardClaims(&ok, checkUserinfoStandardClaims, map[string]any{
		"name": "A", "email_verified": true, "updated_at": float64(now.Unix()), "birthdate": "0000-02-29",
		"address": map[string]any{"country": "SE"},
	}, now)
	expectNoFailure(t, ok)
}

func TestHashClaims(t *testing.T) {
	accessToken := "access-token-value"
	atHash, err := halfHash("RS256", accessToken)
	if err != nil {
		t.Fatal(err)
	}
	claims := validIDTokenClaims(time.Now())
	claims["at_hash"] = atHash
	token := mustParse(t, signToken(t, claims, nil))

	var ok findingList
	checkHashClaim(&ok, token, "at_hash", accessToken, true)
	expectNoFailure(t, ok)

	var wrong findingList
	checkHashClaim(&wrong, token, "at_hash", "another-token", true)
	expectFinding(t, wrong, checkValidateAtHash, Failure)

	var missing findingList
	checkHashClaim(&missing, token, "c_hash", "code", true)
	expectFinding(t, missing, checkExtractCHash, Failure)

	claims["c_hash"] = "AAAA"
	var wrongCode findingList
	checkHashClaim(&wrongCode, mustParse(t, signToken(t, claims, nil)), "c_hash", "code", false)
	expectFinding(t, wrongCode, checkValidateCHash, Failure)

	delete(claims, "at_hash")
	var missingAt findingList
	checkHashClaim(&missingAt, mustParse(t, signToken(t, claims, nil)), "at_hash", accessToken, true)
	expectFinding(t, missingAt, checkExtractAtHash, Failure)

	var optional findingList
	checkHashClaim(&optional, mustParse(t, signToken(t, claims, nil)), "at_hash", accessToken, false)
	expectNoFailure(t, optional)
}

func TestUnrequestedClaims(t *testing.T) {
	claims := validIDTokenClaims(time.Now())
	claims["name"] = "A"
	claims["favourite_colour"] = "blue"
	var findings findingList
	checkNoUnrequestedClaims(&findings, mustParse(t, signToken(t, claims, nil)), []string{"openid"})
	expectFinding(t, findings, checkIDTokenNoName, Warning)
	expectFinding(t, findings, checkIDTokenNonRequestedClaims, Warning)

	var profile findingList
	delete(claims, "favourite_colour")
	checkNoUnrequestedClaims(&profile, mustParse(t, signToken(t, claims, nil)), []string{"openid", "profile"})
	expectNoFailure(t, profile)
}

func TestVerifyJWSWithoutKid(t *testing.T) {
	raw := signToken(t, validIDTokenClaims(time.Now()), map[string]any{"kid": ""})
	if err := verifyJWS(mustParse(t, raw), testJWKS(t), "", true); err != nil {
		t.Errorf("a token without kid did not verify with the only RSA key: %v", err)
	}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	onlyEC := []jose.JSONWebKey{{Key: ecKey.Public(), KeyID: "ec"}}
	if err := verifyJWS(mustParse(t, raw), onlyEC, "", true); err == nil {
		t.Error("an RS256 token verified with only an EC key")
	}
}

// jwksResult serves keys as a fetched JWK set.
func jwksResult(keys ...map[string]any) *httpResult {
	body, _ := json.Marshal(map[string]any{"keys": keys})
	return &httpResult{URL: testIssuer + "/jwks", Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

func publicJWK(t testing.TB, kid string) map[string]any {
	data, err := json.Marshal(jose.JSONWebKey{Key: signingKey(t).Public(), KeyID: kid, Use: "sig", Algorithm: "RS256"})
	if err != nil {
		t.Fatal(err)
	}
	var member map[string]any
	_ = json.Unmarshal(data, &member)
	return member
}

func TestParseServerJWKS(t *testing.T) {
	var ok findingList
	if keys := parseServerJWKS(&ok, jwksResult(publicJWK(t, "a")), Warning); len(keys) != 1 {
		t.Errorf("parsed %d keys, expected 1", len(keys))
	}
	expectNoFailure(t, ok)

	privateJWK := func() map[string]any {
		data, _ := json.Marshal(jose.JSONWebKey{Key: signingKey(t), KeyID: "p"})
		var member map[string]any
		_ = json.Unmarshal(data, &member)
		return member
	}
	cases := []struct {
		name     string
		result   *httpResult
		check    *Check
		severity Severity
	}{
		{"not JSON", &httpResult{URL: "x", Status: 200, Body: []byte("nope")}, checkFetchServerKeys, Fatal},
		{"keys not an array", &httpResult{URL: "x", Status: 200, Body: []byte(`{"keys":{}}`)}, checkServerKeysValid, Warning},
		{"no keys member", &httpResult{URL: "x", Status: 200, Body: []byte(`{}`)}, checkJWKSStructure, Failure},
		{"private key", jwksResult(privateJWK()), checkJWKSNoPrivateKeys, Failure},
		{"symmetric key", jwksResult(map[string]any{"kty": "oct", "kid": "s", "k": "AAAA"}), checkJWKSNoPrivateKeys, Failure},
		{"missing n", jwksResult(without(publicJWK(t, "a"), "n")), checkJWKSStructure, Failure},
		{"padded e", jwksResult(with(publicJWK(t, "a"), "e", "AQAB==")), checkJWKSStructure, Failure},
		{"no kid", jwksResult(without(publicJWK(t, "a"), "kid")), checkJWKSKeyIDs, Failure},
		{"duplicate kid", jwksResult(publicJWK(t, "a"), publicJWK(t, "a")), checkJWKSDistinctKeyIDs, Failure},
		{"unknown kty", jwksResult(map[string]any{"kty": "XYZ", "kid": "x"}), checkJWKSUnusableKeys, Warning},
		{"point off the curve", jwksResult(map[string]any{"kty": "EC", "kid": "e", "crv": "P-256", "x": "AAAA", "y": "AAAA"}), checkJWKSUsableKeys, Failure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			parseServerJWKS(&findings, c.result, Warning)
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestLogoutToken(t *testing.T) {
	now := time.Now()
	idToken := mustParse(t, signToken(t, map[string]any{"sub": "user-1", "sid": "session-1"}, nil))
	valid := func() map[string]any {
		return map[string]any{"iss": testIssuer, "aud": testClientID, "iat": now.Unix(), "jti": "j1", "sub": "user-1", "sid": "session-1",
			"events": map[string]any{backchannelLogoutEvent: map[string]any{}}}
	}
	event := func(form map[string][]string) *callbackEvent { return &callbackEvent{Form: form} }
	c := &client{ID: testClientID}

	var ok findingList
	checkLogoutToken(&ok, event(map[string][]string{"logout_token": {signToken(t, valid(), nil)}}), testIssuer, c, testJWKS(t), idToken, now)
	expectNoFailure(t, ok)

	cases := []struct {
		name     string
		mutate   func(map[string]any)
		check    *Check
		severity Severity
	}{
		{"nonce", func(m map[string]any) { m["nonce"] = "n" }, checkLogoutTokenNonce, Failure},
		{"wrong iss", func(m map[string]any) { m["iss"] = "x" }, checkLogoutTokenClaims, Failure},
		{"two events", func(m map[string]any) { m["events"].(map[string]any)["other"] = map[string]any{} }, checkLogoutTokenClaims, Failure},
		{"old iat", func(m map[string]any) { m["iat"] = now.Add(-48 * time.Hour).Unix() }, checkLogoutTokenClaims, Failure},
		{"no jti", func(m map[string]any) { delete(m, "jti") }, checkLogoutTokenClaims, Failure},
		{"other sub", func(m map[string]any) { m["sub"] = "user-2" }, checkLogoutTokenSub, Failure},
		{"other sid", func(m map[string]any) { m["sid"] = "session-2" }, checkLogoutTokenSid, Failure},
		{"neither sub nor sid", func(m map[string]any) { delete(m, "sub"); delete(m, "sid") }, checkLogoutTokenSubOrSid, Failure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claims := valid()
			tc.mutate(claims)
			var findings findingList
			checkLogoutToken(&findings, event(map[string][]string{"logout_token": {signToken(t, claims, nil)}}), testIssuer, c, testJWKS(t), idToken, now)
			expectFinding(t, findings, tc.check, tc.severity)
		})
	}

	t.Run("missing token", func(t *testing.T) {
		var findings findingList
		checkLogoutToken(&findings, event(map[string][]string{}), testIssuer, c, testJWKS(t), idToken, now)
		expectFinding(t, findings, checkLogoutTokenPresent, Fatal)
	})
	t.Run("extra parameter and bad signature", func(t *testing.T) {
		raw := signToken(t, valid(), nil)
		tampered := raw[:len(raw)-4] + "AAAA"
		var findings findingList
		checkLogoutToken(&findings, event(map[string][]string{"logout_token": {tampered}, "state": {"x"}}), testIssuer, c, testJWKS(t), idToken, now)
		expectFinding(t, findings, checkBackchannelParameters, Warning)
		expectFinding(t, findings, checkLogoutTokenSignature, Failure)
	})
}

func TestUnsignedAndRS256Checks(t *testing.T) {
	claims := validIDTokenClaims(time.Now())
	signed := mustParse(t, signToken(t, claims, map[string]any{"kid": ""}))
	var findings findingList
	checkRS256WithKid(&findings, signed)
	expectFinding(t, findings, checkIDTokenHasKid, Failure)
	checkUnsignedIDToken(&findings, signed)
	expectFinding(t, findings, checkIDTokenUnsigned, Failure)

	es := mustParse(t, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"k"}`))+".e30.sig")
	var esFindings findingList
	checkRS256WithKid(&esFindings, es)
	expectFinding(t, esFindings, checkIDTokenAlgRS256, Failure)

	unsigned := mustParse(t, unsignedCopy(signed))
	var none findingList
	checkUnsignedIDToken(&none, unsigned)
	expectNoFailure(t, none)
}
