package conformance

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The modules of the Dynamic OP plan and of the Config OP plan.

var (
	checkUserinfoAlgAdvertised = defineCheck("CheckDiscEndpointUserinfoSigningAlgValuesSupportedContainsRS256",
		"userinfo_signing_alg_values_supported contains RS256")
	checkUserinfoJWTContentType = defineCheck("EnsureContentTypeApplicationJwt",
		"signed userinfo has Content-Type application/jwt (OpenID Connect Core §5.3.2)")
	checkUserinfoSignature = defineCheck("ValidateUserInfoResponseSignature",
		"a key of the provider's JWK set verifies the signed userinfo")
	checkUserinfoAlgRS256 = defineCheck("CheckUserInfoSignatureAlgorithmIsRS256",
		"signed userinfo uses the registered alg RS256")
	checkUserinfoJWTClaims = defineCheck("ValidateSignedUserInfoResponseStandardJWTClaims",
		"signed userinfo has iss = issuer and aud containing the client_id, and sane exp, iat and nbf")
	checkUserinfoNoNonce = defineCheck("EnsureUserInfoDoesNotContainNonce",
		"signed userinfo has no nonce")
	checkRegistrationRejected = defineCheck("EnsureHttpStatusCodeIs400",
		"invalid client metadata is rejected with 400 (RFC 7591 §3.2.2)")
	checkRegistrationRedirectError = defineCheck("EnsureErrorIsInvalidRedirectUriOrInvalidClientMetadata",
		"a redirect URI with a fragment gets invalid_redirect_uri or invalid_client_metadata")
	checkRegistrationMetadataError = defineCheck("EnsureErrorIsInvalidClientMetadata",
		"a sector identifier that lacks the redirect URI gets invalid_client_metadata")
	checkNewSigningKey = defineCheck("VerifyNewJwksHasNewSigningKey",
		"after rotation the JWK set has a signing key with a new kid and new key material")
	checkOldSigningKey = defineCheck("VerifyNewJwksStillHasOldSigningKey",
		"after rotation the JWK set still has an old signing key")
	checkAssertionAudIssuer = defineCheck("EnsureClientAssertionWithIssAudSucceeds",
		"a private_key_jwt assertion whose aud is the issuer is accepted")
)

func init() {
	for _, spec := range []*moduleSpec{
		{Name: "oidcc-discovery-endpoint-verification", run: runDiscoveryVerification},
		{Name: "oidcc-idtoken-rs256", run: runIDTokenRS256, dynamicOnly: true},
		{Name: "oidcc-userinfo-rs256", run: runUserinfoRS256, dynamicOnly: true},
		{Name: "oidcc-ensure-redirect-uri-in-authorization-request", run: runRedirectURIMissing, browser: true, dynamicOnly: true},
		{Name: "oidcc-redirect-uri-query-OK", run: runRedirectURIQueryOK, dynamicOnly: true},
		{Name: "oidcc-redirect-uri-query-mismatch", run: redirectURIQueryModule("?bar=foo", "?foo=bar"), browser: true, dynamicOnly: true},
		{Name: "oidcc-redirect-uri-query-added", run: redirectURIQueryModule("", "?foo=bar"), browser: true, dynamicOnly: true},
		{Name: "oidcc-redirect-uri-regfrag", run: runRedirectURIFragment, dynamicOnly: true},
		{Name: "oidcc-registration-logo-uri", run: registrationDisplayModule("logo_uri", "/images/openid.png", "the client's logo"), browser: true, dynamicOnly: true},
		{Name: "oidcc-registration-policy-uri", run: registrationDisplayModule("policy_uri", "/login.html", "the client's policy link"), browser: true, dynamicOnly: true},
		{Name: "oidcc-registration-tos-uri", run: registrationDisplayModule("tos_uri", "/tos.html", "the client's terms of service link"), browser: true, dynamicOnly: true},
		{Name: "oidcc-registration-jwks-uri", run: runRegistrationJWKSURI, dynamicOnly: true},
		{Name: "oidcc-registration-sector-uri", run: sectorModule(true), dynamicOnly: true},
		{Name: "oidcc-registration-sector-bad", run: sectorModule(false), dynamicOnly: true},
		{Name: "oidcc-server-rotate-keys", run: runRotateKeys, dynamicOnly: true, exclusive: true},
		{Name: "oidcc-refresh-token-rp-key-rotation", run: runRefreshKeyRotation, dynamicOnly: true},
		{Name: "oidcc-ensure-client-assertion-with-iss-aud-succeeds", run: runAssertionAudIssuer, dynamicOnly: true},
	} {
		defineModule(spec)
	}
}

// oidcc-discovery-endpoint-verification: the checks of the Config OP
// plan, with the Dynamic OP profile's stricter rules in the Dynamic plan.
func runDiscoveryVerification(m *moduleRun) {
	m.loadServerConfig()
	verifyDiscoveryDocument(m, m.discoveryURL(), m.config, m.plan == "dynamic")
	m.loadServerKeys(Failure)
}

// oidcc-idtoken-rs256: registered with id_token_signed_response_alg RS256,
// the ID token has alg RS256 and a kid.
func runIDTokenRS256(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{metadata: map[string]any{"id_token_signed_response_alg": "RS256"}})
	f := m.runFlow(c, m.newAuthRequest(c), flowOptions{})
	checkRS256WithKid(m, f.idToken())
}

// oidcc-userinfo-rs256: registered with userinfo_signed_response_alg
// RS256, userinfo responds with a JWT signed by the provider.
func runUserinfoRS256(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	if algs, _ := m.config.stringList("userinfo_signing_alg_values_supported"); !slices.Contains(algs, "RS256") {
		report(m, checkUserinfoAlgAdvertised, Failure, "userinfo_signing_alg_values_supported %v does not contain RS256", algs)
	}
	c := m.newClient(clientOptions{metadata: map[string]any{"userinfo_signed_response_alg": "RS256"}})
	f := m.runFlow(c, m.newAuthRequest(c), flowOptions{})
	result := m.callUserinfo(userinfoGet, f.accessToken, f.tokenType)
	claims := checkSignedUserinfo(m, result, m.config.str("issuer"), c, m.keys)
	if claims != nil {
		checkUserinfoClaims(m, claims, f.frontSub(), f.tokenSub(), m.now())
	}
}

// checkSignedUserinfo checks a signed userinfo response and returns its
// claims.
func checkSignedUserinfo(r recorder, result *httpResult, issuer string, c *client, keys []jose.JSONWebKey) map[string]any {
	if result.Err != nil || result.Status != http.StatusOK {
		report(r, checkUserinfoStatus, Failure, "the userinfo endpoint responded with status %d: %s", result.Status, describeBody(result.Header, result.Body))
	}
	if mediaType(result.Header) != "application/jwt" {
		report(r, checkUserinfoJWTContentType, Failure, "signed userinfo has Content-Type %q, expected application/jwt", result.Header.Get("Content-Type"))
	}
	token, err := parseJWT(strings.TrimSpace(string(result.Body)))
	if err != nil || token.Encrypted {
		report(r, checkUserinfoSignature, Fatal, "the userinfo response is not a signed JWT: %v", err)
		return nil
	}
	if err := verifyJWS(token, keys, c.Secret, true); err != nil {
		report(r, checkUserinfoSignature, Failure, "%v", err)
	}
	if token.alg() != "RS256" {
		report(r, checkUserinfoAlgRS256, Failure, "signed userinfo has alg %q, expected the registered RS256", token.alg())
	}
	if token.str("iss") != issuer {
		report(r, checkUserinfoJWTClaims, Warning, "iss is %q, expected the issuer %q", token.str("iss"), issuer)
	}
	if !slices.Contains(token.audiences(), c.ID) {
		report(r, checkUserinfoJWTClaims, Warning, "aud %v does not contain the client_id %q", token.audiences(), c.ID)
	}
	for _, name := range []string{"exp", "iat", "nbf"} {
		if value, present := token.Claims[name]; present {
			if _, ok := value.(float64); !ok {
				report(r, checkUserinfoJWTClaims, Warning, "%s is %s, not a number", name, compactJSON(value))
			}
		}
	}
	if _, present := token.Claims["nonce"]; present {
		report(r, checkUserinfoNoNonce, Failure, "signed userinfo has a nonce")
	}
	return token.Claims
}

// oidcc-ensure-redirect-uri-in-authorization-request: with two redirect
// URIs registered, a request without redirect_uri must get an error page.
// The second URI is the callback server's callback_alt rather than the
// suite's https://example.org/redirect, so that a provider that redirects
// anyway sends no request off this machine.
func runRedirectURIMissing(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{redirectURIs: []string{m.base + "/callback", m.base + "/callback_alt"}})
	req := m.newAuthRequest(c)
	req.remove("redirect_uri")
	res := m.authorize(req)
	m.expectErrorPage(0, res.nav, "error page for a request without redirect_uri while two are registered")
}

// oidcc-redirect-uri-query-OK: a registered redirect URI with a query
// works, and its query comes back.
func runRedirectURIQueryOK(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := m.newClient(clientOptions{redirectURIs: []string{m.base + "/callback?bar=foo"}})
	m.runFlow(c, m.newAuthRequest(c), flowOptions{})
}

// redirectURIQueryModule runs oidcc-redirect-uri-query-mismatch and
// -added: a redirect_uri whose query differs from the registered one must
// get an error page.
func redirectURIQueryModule(registered, sent string) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		c := m.newClient(clientOptions{redirectURIs: []string{m.base + "/callback" + registered}})
		req := m.newAuthRequest(c)
		req.set("redirect_uri", m.base+"/callback"+sent)
		res := m.authorize(req)
		m.expectErrorPage(0, res.nav, "error page for a redirect_uri whose query differs from the registered one")
	}
}

// checkRegistrationRejection checks that a registration was rejected with
// 400, JSON and one of the expected errors (a warning otherwise). A
// client that was created anyway is deleted.
func (m *moduleRun) checkRegistrationRejection(result *httpResult, errorCheck *Check, expected ...string) {
	var body map[string]any
	_ = json.Unmarshal(result.Body, &body)
	if result.Status == http.StatusCreated {
		c := &client{}
		m.fillClient(c, body, map[string]any{})
	}
	if result.Err != nil || result.Status != http.StatusBadRequest {
		report(m, checkRegistrationRejected, Failure, "registration responded with status %d, expected 400: %s", result.Status, describeBody(result.Header, result.Body))
	}
	if mediaType(result.Header) != "application/json" {
		report(m, checkRegistrationContentType, Failure, "the registration error has Content-Type %q, expected application/json", result.Header.Get("Content-Type"))
	}
	if e, _ := body["error"].(string); !slices.Contains(expected, e) {
		report(m, errorCheck, Warning, "error is %q, expected %s", e, strings.Join(expected, " or "))
	}
}

// oidcc-redirect-uri-regfrag: registering a redirect URI with a fragment
// must fail (OpenID Connect Dynamic Client Registration 1.0 §2).
func runRedirectURIFragment(m *moduleRun) {
	m.setupFor(m.variant.ClientAuth)
	c := &client{Key: mustRSAKey(), AuthMethod: m.variant.ClientAuth}
	body := m.registrationRequest(c, clientOptions{authMethod: m.variant.ClientAuth, redirectURIs: []string{m.base + "/callback#foobar"}})
	m.checkRegistrationRejection(m.postRegistration(body), checkRegistrationRedirectError, "invalid_redirect_uri", "invalid_client_metadata")
}

func mustRSAKey() *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return key
}

// registrationDisplayModule runs the oidcc-registration-*-uri modules: the
// registration with logo_uri, policy_uri or tos_uri must succeed, and the
// login page, which should show it, is saved for review.
func registrationDisplayModule(member, path, what string) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		c := m.newClient(clientOptions{metadata: map[string]any{member: m.base + path}})
		if err := m.agent.clearCookies(m.ctx); err != nil {
			m.skip("clearing the cookies failed: %v", err)
		}
		req := m.newAuthRequest(c)
		nav, err := m.agent.navigate(m.ctx, m.config.str("authorization_endpoint")+"?"+req.encode(), navigateOptions{stopAtLogin: true})
		if err != nil {
			report(m, checkExpectRedirect, Fatal, "the user agent failed on the way to the login page: %v", err)
		}
		if cb := m.inbox.next(m.ctx, 500*time.Millisecond, eventCallback); cb != nil {
			res := &authResult{nav: nav, callback: cb}
			if params := m.anyModeParameters(res); params.Has("error") {
				report(m, checkAuthorizationEndpointError, Fatal, "the provider returned error %q: %s", params.Get("error"), params.Get("error_description"))
			}
		}
		m.screenshot("login", "the login page, which should show "+what)
	}
}

// oidcc-registration-jwks-uri: a client that registers jwks_uri, whose key
// has its thumbprint as kid, completes the flow with private_key_jwt.
func runRegistrationJWKSURI(m *moduleRun) {
	m.setupFor("private_key_jwt")
	key := mustRSAKey()
	kid := thumbprint(key)
	c := m.newClientWithKey(clientOptions{authMethod: "private_key_jwt", jwksURI: true, keyID: kid}, key)
	m.runFlow(c, m.newAuthRequest(c), flowOptions{})
}

// newClientWithKey registers a client whose key is key.
func (m *moduleRun) newClientWithKey(options clientOptions, key *rsa.PrivateKey) *client {
	if options.authMethod == "" {
		options.authMethod = m.variant.ClientAuth
	}
	c := &client{AuthMethod: options.authMethod, Key: key, KeyID: options.keyID, Scope: "openid", Dynamic: true}
	body := m.registrationRequest(c, options)
	metadata := checkRegistrationResponse(m, m.postRegistration(body))
	m.fillClient(c, metadata, body)
	return c
}

func thumbprint(key *rsa.PrivateKey) string {
	jwk := jose.JSONWebKey{Key: key.Public()}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(sum)
}

// sectorModule runs oidcc-registration-sector-uri (good) and -sector-bad:
// a pairwise client's sector_identifier_uri must list its redirect URIs
// (OpenID Connect Core §8.1). Skipped without pairwise subjects.
func sectorModule(good bool) func(*moduleRun) {
	return func(m *moduleRun) {
		m.setupFor(m.variant.ClientAuth)
		if !m.config.lists("subject_types_supported", "pairwise") {
			m.skip("subject_types_supported does not list pairwise, so sector identifiers cannot be tested")
		}
		listed := []string{m.base + "/callback"}
		if !good {
			listed = []string{"https://example.com/op"}
		}
		data, _ := json.Marshal(listed)
		m.inbox.setSectorURIs(data)
		metadata := map[string]any{"subject_type": "pairwise", "sector_identifier_uri": m.base + "/sector_identifier"}
		if good {
			m.newClient(clientOptions{metadata: metadata})
			return
		}
		c := &client{Key: mustRSAKey()}
		body := m.registrationRequest(c, clientOptions{authMethod: m.variant.ClientAuth, metadata: metadata})
		m.checkRegistrationRejection(m.postRegistration(body), checkRegistrationMetadataError, "invalid_client_metadata")
	}
}

// oidcc-server-rotate-keys: after the provider rotates its signing keys,
// its JWK set has a new signing key and should keep an old one.
func runRotateKeys(m *moduleRun) {
	m.loadServerConfig()
	if m.h.opts.RotateKeys == nil {
		m.skip("needs a key rotation hook (--rotate-keys-command)")
	}
	m.loadServerKeys(Failure)
	before := signingKeys(m.keys)
	if err := m.h.opts.RotateKeys(m.ctx); err != nil {
		m.skip("the key rotation hook failed: %v", err)
	}
	m.waitForNewKey(before)
	m.loadServerKeys(Failure)
	compareRotatedKeys(m, before, signingKeys(m.keys))
}

// rotationPropagation bounds the wait for a rotated key to be published. A
// provider may load new keys periodically; Latchkey's serve reloads them
// every minute.
const rotationPropagation = 90 * time.Second

// waitForNewKey polls the JWK set until it has a signing key that before
// lacks, or rotationPropagation passes, as a person who rotated the keys
// would wait before starting the official suite's module.
func (m *moduleRun) waitForNewKey(before []jose.JSONWebKey) {
	jwksURI := m.config.str("jwks_uri")
	deadline := time.Now().Add(rotationPropagation)
	for time.Now().Before(deadline) {
		var ignored findingList
		keys := parseServerJWKS(&ignored, m.get(jwksURI, http.Header{"Accept": {"application/json"}}), Failure)
		var probe findingList
		compareRotatedKeys(&probe, before, signingKeys(keys))
		if !slices.ContainsFunc(probe, func(f Finding) bool { return f.Check == checkNewSigningKey.ID }) {
			return
		}
		m.sleep(2 * time.Second)
	}
}

func signingKeys(keys []jose.JSONWebKey) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.Use == "" || k.Use == "sig" {
			out = append(out, k)
		}
	}
	return out
}

func compareRotatedKeys(r recorder, before, after []jose.JSONWebKey) {
	oldKept, newFound := false, false
	for _, k := range after {
		known := false
		for _, old := range before {
			if k.KeyID == old.KeyID {
				known = true
				oldKept = oldKept || sameKeyMaterial(k, old)
			}
		}
		if !known && !slices.ContainsFunc(before, func(old jose.JSONWebKey) bool { return sameKeyMaterial(k, old) }) {
			newFound = true
		}
	}
	if !newFound {
		report(r, checkNewSigningKey, Failure, "no signing key with a new kid and new key material appeared after the rotation")
	}
	if !oldKept {
		report(r, checkOldSigningKey, Warning, "no signing key of before the rotation is still published, so tokens it signed stop verifying")
	}
}

func sameKeyMaterial(a, b jose.JSONWebKey) bool {
	da, errA := a.Public().MarshalJSON()
	db, errB := b.Public().MarshalJSON()
	if errA != nil || errB != nil {
		return false
	}
	var ma, mb map[string]any
	_ = json.Unmarshal(da, &ma)
	_ = json.Unmarshal(db, &mb)
	for _, member := range []string{"n", "x", "y"} {
		if ma[member] != mb[member] {
			return false
		}
	}
	return true
}

// oidcc-refresh-token-rp-key-rotation: a private_key_jwt client with
// jwks_uri rotates its key after the code exchange. After the provider's
// JWKS refresh delay, a refresh signed with the new key must work.
func runRefreshKeyRotation(m *moduleRun) {
	m.setupFor("private_key_jwt")
	key := mustRSAKey()
	c := m.newClientWithKey(clientOptions{authMethod: "private_key_jwt", jwksURI: true, keyID: thumbprint(key), refresh: true}, key)
	if m.config.lists("scopes_supported", "offline_access") {
		c.Scope = "openid offline_access"
	}
	f := m.refreshFlow(c, true)

	newKey := mustRSAKey()
	c.Key, c.KeyID = newKey, thumbprint(newKey)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: newKey.Public(), KeyID: c.KeyID, Use: "sig", Algorithm: "RS256"}}})
	m.inbox.setJWKS(set)
	m.sleep(m.h.opts.JWKSRefreshDelay)
	m.refreshSteps(c, f, true)
}

// oidcc-ensure-client-assertion-with-iss-aud-succeeds: a private_key_jwt
// assertion with the issuer as aud should be accepted; a well-formed
// invalid_client is only a warning.
func runAssertionAudIssuer(m *moduleRun) {
	m.setupFor("private_key_jwt")
	c := m.newClient(clientOptions{authMethod: "private_key_jwt"})
	req := m.newAuthRequest(c)
	res := m.authorize(req)
	m.requireCallback(res)
	params := m.responseParameters(res)
	checkSuccessParameters(m, m.variant, params, m.config.str("issuer"), req.get("state"))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {params.Get("code")}, "redirect_uri": {c.redirectURI()}}
	t := m.callToken(c, form, tokenCallOptions{assertionAudience: m.config.str("issuer")})
	if t.Err == nil && t.Status != http.StatusOK && t.JSON["error"] == "invalid_client" {
		checkTokenError(m, t, "invalid_client")
		report(m, checkAssertionAudIssuer, Warning, "the token endpoint rejected an assertion whose aud is the issuer: %s", compactJSON(t.JSON["error_description"]))
		return
	}
	checkTokenSuccess(m, t, Info)
	token := extractIDToken(m, checkExtractIDTokenFromToken, t.str("id_token"))
	checkIDToken(m, token, m.idTokenExpectations(c, req.get("nonce")))
}
