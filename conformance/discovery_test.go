package conformance

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

const testIssuer = "https://op.example.com"

// validDiscovery returns a discovery document that passes every check of
// oidcc-discovery-endpoint-verification, dynamic rules included.
func validDiscovery() map[string]any {
	return map[string]any{
		"issuer":                                testIssuer,
		"authorization_endpoint":                testIssuer + "/auth",
		"token_endpoint":                        testIssuer + "/token",
		"userinfo_endpoint":                     testIssuer + "/userinfo",
		"jwks_uri":                              testIssuer + "/jwks",
		"registration_endpoint":                 testIssuer + "/register",
		"end_session_endpoint":                  testIssuer + "/logout",
		"scopes_supported":                      []any{"openid", "profile"},
		"response_types_supported":              []any{"code", "id_token", "token id_token"},
		"grant_types_supported":                 []any{"authorization_code", "implicit"},
		"subject_types_supported":               []any{"public"},
		"id_token_signing_alg_values_supported": []any{"RS256"},
		"token_endpoint_auth_methods_supported": []any{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"claims_supported":                      []any{"sub"},
		"claims_parameter_supported":            true,
		"request_parameter_supported":           true,
		"request_uri_parameter_supported":       true,
		"ui_locales_supported":                  []any{"en-US", "sv"},
		"code_challenge_methods_supported":      []any{"S256"},
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
		"frontchannel_logout_supported":         true,
		"frontchannel_logout_session_supported": true,
	}
}

func discoveryResult(document map[string]any) *httpResult {
	body, _ := json.Marshal(document)
	return &httpResult{URL: testIssuer + discoveryPath, Status: 200, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, Body: body}
}

func TestParseServerConfig(t *testing.T) {
	var ok findingList
	if parseServerConfig(&ok, discoveryResult(validDiscovery())) == nil {
		t.Fatalf("a valid document was rejected:\n%s", formatFindings(ok))
	}
	expectNoFailure(t, ok)

	cases := []struct {
		name   string
		result *httpResult
		check  *Check
	}{
		{"transport error", &httpResult{URL: "x", Err: errors.New("refused")}, checkGetServerConfiguration},
		{"not JSON", &httpResult{URL: "x", Status: 200, Body: []byte("<html>")}, checkGetServerConfiguration},
		{"no issuer", discoveryResult(without(validDiscovery(), "issuer")), checkServerConfiguration},
		{"token endpoint not a string", discoveryResult(with(validDiscovery(), "token_endpoint", 5)), checkServerConfiguration},
		{"authorization endpoint not a URL", discoveryResult(with(validDiscovery(), "authorization_endpoint", "http://[::1")), checkServerConfiguration},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			if parseServerConfig(&findings, c.result) != nil {
				t.Error("the document was accepted")
			}
			expectFinding(t, findings, c.check, Fatal)
		})
	}
}

func with(document map[string]any, name string, value any) map[string]any {
	document[name] = value
	return document
}

func without(document map[string]any, name string) map[string]any {
	delete(document, name)
	return document
}

func configOf(document map[string]any) *serverConfig {
	return &serverConfig{URL: testIssuer + discoveryPath, Status: 200, ContentType: "application/json", Raw: document}
}

func TestClientAuthAdvertised(t *testing.T) {
	cases := []struct {
		method  string
		methods any
		check   *Check
	}{
		{"client_secret_basic", []any{"client_secret_post"}, checkSupportsClientSecretBasic},
		{"client_secret_post", []any{"client_secret_basic"}, checkSupportsClientSecretPost},
		{"private_key_jwt", nil, checkSupportsPrivateKeyJWT},
	}
	for _, c := range cases {
		t.Run(c.method, func(t *testing.T) {
			document := validDiscovery()
			if c.methods == nil {
				delete(document, "token_endpoint_auth_methods_supported")
			} else {
				document["token_endpoint_auth_methods_supported"] = c.methods
			}
			var findings findingList
			checkClientAuthAdvertised(&findings, configOf(document), c.method)
			expectFinding(t, findings, c.check, Failure)
		})
	}

	t.Run("basic without a list", func(t *testing.T) {
		var findings findingList
		checkClientAuthAdvertised(&findings, configOf(without(validDiscovery(), "token_endpoint_auth_methods_supported")), "client_secret_basic")
		expectNoFailure(t, findings)
	})
}

func TestVerifyDiscoveryDocument(t *testing.T) {
	t.Run("valid document", func(t *testing.T) {
		var findings findingList
		verifyDiscoveryDocument(&findings, testIssuer+discoveryPath, configOf(validDiscovery()), true)
		expectNoFailure(t, findings)
	})

	cases := []struct {
		name     string
		mutate   func(*serverConfig)
		url      string
		dynamic  bool
		check    *Check
		severity Severity
	}{
		{"status 404", func(c *serverConfig) { c.Status = 404 }, "", false, checkDiscoveryStatus, Failure},
		{"text/html", func(c *serverConfig) { c.ContentType = "text/html" }, "", false, checkDiscoveryContentType, Failure},
		{"http discovery URL", nil, "http://op.example.com" + discoveryPath, false, checkDiscoveryURL, Failure},
		{"issuer mismatch", func(c *serverConfig) { c.Raw["issuer"] = "https://other.example.com" }, "", false, checkDiscoveryIssuer, Failure},
		{"issuer with query", func(c *serverConfig) { c.Raw["issuer"] = testIssuer + "?x=1" }, "", false, checkDiscoveryIssuerURL, Failure},
		{"boolean as string", func(c *serverConfig) { c.Raw["claims_parameter_supported"] = "true" }, "", false, checkDiscoveryTypes, Failure},
		{"unknown member", func(c *serverConfig) { c.Raw["version"] = "3" }, "", false, checkDiscoveryUnknownMembers, Warning},
		{"no OIDC response type", func(c *serverConfig) { c.Raw["response_types_supported"] = []any{"token"} }, "", false, checkDiscoveryResponseTypes, Failure},
		{"dynamic without id_token", func(c *serverConfig) { c.Raw["response_types_supported"] = []any{"code"} }, "", true, checkDiscoveryResponseTypesDynamic, Failure},
		{"no public subject", func(c *serverConfig) { c.Raw["subject_types_supported"] = []any{"other"} }, "", false, checkDiscoverySubjectTypes, Failure},
		{"no RS256", func(c *serverConfig) { c.Raw["id_token_signing_alg_values_supported"] = []any{"ES256"} }, "", false, checkDiscoveryIDTokenAlgs, Failure},
		{"userinfo algs not array", func(c *serverConfig) { c.Raw["userinfo_signing_alg_values_supported"] = "RS256" }, "", false, checkDiscoveryUserinfoAlgs, Failure},
		{"http authorization endpoint", func(c *serverConfig) { c.Raw["authorization_endpoint"] = "http://op.example.com/auth" }, "", false, checkDiscoveryAuthorizationEndpoint, Failure},
		{"no token endpoint", func(c *serverConfig) { delete(c.Raw, "token_endpoint") }, "", false, checkDiscoveryTokenEndpoint, Failure},
		{"no userinfo endpoint", func(c *serverConfig) { delete(c.Raw, "userinfo_endpoint") }, "", false, checkDiscoveryUserinfoEndpoint, Warning},
		{"http registration endpoint", func(c *serverConfig) { c.Raw["registration_endpoint"] = "http://op.example.com/r" }, "", false, checkDiscoveryRegistrationEndpoint, Failure},
		{"http jwks_uri", func(c *serverConfig) { c.Raw["jwks_uri"] = "http://op.example.com/jwks" }, "", false, checkDiscoveryJWKSURI, Failure},
		{"request parameter unsupported", func(c *serverConfig) { c.Raw["request_parameter_supported"] = false }, "", false, checkDiscoveryRequestParameter, Info},
		{"request_uri unsupported", func(c *serverConfig) { c.Raw["request_uri_parameter_supported"] = false }, "", false, checkDiscoveryRequestURIParameter, Info},
		{"request objects without RS256", func(c *serverConfig) { c.Raw["request_object_signing_alg_values_supported"] = []any{"none"} }, "", false, checkDiscoveryRequestObjectAlgs, Warning},
		{"claims parameter unsupported", func(c *serverConfig) { delete(c.Raw, "claims_parameter_supported") }, "", false, checkDiscoveryClaimsParameter, Info},
		{"no claims_supported", func(c *serverConfig) { delete(c.Raw, "claims_supported") }, "", false, checkDiscoveryClaimsSupported, Warning},
		{"empty grant types", func(c *serverConfig) { c.Raw["grant_types_supported"] = []any{} }, "", false, checkDiscoveryGrantTypes, Failure},
		{"dynamic without implicit", func(c *serverConfig) { c.Raw["grant_types_supported"] = []any{"authorization_code"} }, "", true, checkDiscoveryGrantTypesDynamic, Failure},
		{"scopes without openid", func(c *serverConfig) { c.Raw["scopes_supported"] = []any{"profile"} }, "", false, checkDiscoveryScopesOpenID, Failure},
		{"no scopes_supported", func(c *serverConfig) { delete(c.Raw, "scopes_supported") }, "", false, checkDiscoveryScopesOpenID, Warning},
		{"scope with a quote", func(c *serverConfig) { c.Raw["scopes_supported"] = []any{"openid", `a"b`} }, "", false, checkDiscoveryScopeSyntax, Failure},
		{"invalid locale", func(c *serverConfig) { c.Raw["ui_locales_supported"] = []any{"not a locale"} }, "", false, checkDiscoveryLocales, Failure},
		{"underscore locale", func(c *serverConfig) { c.Raw["ui_locales_supported"] = []any{"en_US"} }, "", false, checkDiscoveryLocales, Failure},
		{"locale case", func(c *serverConfig) { c.Raw["claims_locales_supported"] = []any{"en-us"} }, "", false, checkDiscoveryLocaleCase, Warning},
		{"http introspection endpoint", func(c *serverConfig) { c.Raw["introspection_endpoint"] = "http://op.example.com/i" }, "", false, checkDiscoveryEndpointsHTTPS, Failure},
		{"code challenge without S256", func(c *serverConfig) { c.Raw["code_challenge_methods_supported"] = []any{"S512"} }, "", false, checkDiscoveryCodeChallenge, Failure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			config := configOf(validDiscovery())
			if c.mutate != nil {
				c.mutate(config)
			}
			discoveryURL := c.url
			if discoveryURL == "" {
				discoveryURL = testIssuer + discoveryPath
			}
			var findings findingList
			verifyDiscoveryDocument(&findings, discoveryURL, config, c.dynamic)
			expectFinding(t, findings, c.check, c.severity)
		})
	}
}

func TestVerifyLogoutDiscovery(t *testing.T) {
	for _, channel := range []string{"", "backchannel", "frontchannel"} {
		var findings findingList
		verifyLogoutDiscovery(&findings, configOf(validDiscovery()), channel)
		expectNoFailure(t, findings)
	}

	cases := []struct {
		name    string
		channel string
		member  string
		check   *Check
	}{
		{"no end_session_endpoint", "", "end_session_endpoint", checkDiscoveryEndSession},
		{"no back-channel logout", "backchannel", "backchannel_logout_supported", checkDiscoveryBackchannel},
		{"no back-channel sid", "backchannel", "backchannel_logout_session_supported", checkDiscoveryBackchannelSession},
		{"no front-channel logout", "frontchannel", "frontchannel_logout_supported", checkDiscoveryFrontchannel},
		{"no front-channel sid", "frontchannel", "frontchannel_logout_session_supported", checkDiscoveryFrontchannelSession},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var findings findingList
			verifyLogoutDiscovery(&findings, configOf(without(validDiscovery(), c.member)), c.channel)
			expectFinding(t, findings, c.check, Failure)
		})
	}
}
