package conformance

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

const discoveryPath = "/.well-known/openid-configuration"

// serverConfig is the provider's discovery document.
type serverConfig struct {
	URL    string
	Status int
	// ContentType is the media type of the response, without parameters.
	ContentType string
	Raw         map[string]any
}

func (s *serverConfig) str(name string) string {
	v, _ := s.Raw[name].(string)
	return v
}

// stringList returns the named member as a list of strings, and whether it
// is present and an array of strings.
func (s *serverConfig) stringList(name string) ([]string, bool) {
	return stringArray(s.Raw[name])
}

func (s *serverConfig) lists(name, value string) bool {
	values, _ := s.stringList(name)
	return slices.Contains(values, value)
}

func (s *serverConfig) boolean(name string) bool {
	v, _ := s.Raw[name].(bool)
	return v
}

func stringArray(v any) ([]string, bool) {
	items, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

var (
	checkGetServerConfiguration = defineCheck("GetDynamicServerConfiguration",
		"the discovery document is fetched and is a JSON object")
	checkServerConfiguration = defineCheck("CheckServerConfiguration",
		"issuer, authorization_endpoint and token_endpoint are strings that parse as URLs")
	checkUserinfoEndpointPresent = defineCheck("SetProtectedResourceUrlToUserInfoEndpoint",
		"discovery has a userinfo_endpoint, which certification needs")
	checkSupportsClientSecretBasic = defineCheck("EnsureServerConfigurationSupportsClientSecretBasic",
		"token_endpoint_auth_methods_supported is absent or lists client_secret_basic")
	checkSupportsClientSecretPost = defineCheck("EnsureServerConfigurationSupportsClientSecretPost",
		"token_endpoint_auth_methods_supported lists client_secret_post")
	checkSupportsPrivateKeyJWT = defineCheck("EnsureServerConfigurationSupportsPrivateKeyJwt",
		"token_endpoint_auth_methods_supported lists private_key_jwt")
)

// parseServerConfig checks a fetched discovery document as every flow
// module does before it starts (OpenID Connect Discovery 1.0 §3 and §4).
func parseServerConfig(r recorder, fetched *httpResult) *serverConfig {
	config := &serverConfig{URL: fetched.URL, Status: fetched.Status}
	if fetched.Err != nil {
		report(r, checkGetServerConfiguration, Fatal, "GET %s failed: %v", fetched.URL, fetched.Err)
		return nil
	}
	config.ContentType = mediaType(fetched.Header)
	if err := json.Unmarshal(fetched.Body, &config.Raw); err != nil || config.Raw == nil {
		report(r, checkGetServerConfiguration, Fatal, "GET %s returned status %d with a body that is not a JSON object: %.200s", fetched.URL, fetched.Status, fetched.Body)
		return nil
	}
	for _, name := range []string{"issuer", "authorization_endpoint", "token_endpoint"} {
		value, ok := config.Raw[name].(string)
		if !ok || value == "" {
			report(r, checkServerConfiguration, Fatal, "%s is missing or not a string", name)
			return nil
		}
		if _, err := url.Parse(value); err != nil {
			report(r, checkServerConfiguration, Fatal, "%s %q is not a URL: %v", name, value, err)
			return nil
		}
	}
	return config
}

// checkClientAuthAdvertised applies the discovery check for the client
// authentication method under test.
func checkClientAuthAdvertised(r recorder, config *serverConfig, method string) {
	methods, present := config.stringList("token_endpoint_auth_methods_supported")
	switch method {
	case "client_secret_basic":
		if present && !slices.Contains(methods, method) {
			report(r, checkSupportsClientSecretBasic, Failure, "token_endpoint_auth_methods_supported %v does not list client_secret_basic", methods)
		}
	case "client_secret_post":
		if !slices.Contains(methods, method) {
			report(r, checkSupportsClientSecretPost, Failure, "token_endpoint_auth_methods_supported %v does not list client_secret_post", methods)
		}
	case "private_key_jwt":
		if !slices.Contains(methods, method) {
			report(r, checkSupportsPrivateKeyJWT, Failure, "token_endpoint_auth_methods_supported %v does not list private_key_jwt", methods)
		}
	}
}

var (
	checkDiscoveryStatus = defineCheck("CheckDiscEndpointHttpStatus200",
		"the discovery endpoint answers 200")
	checkDiscoveryContentType = defineCheck("CheckDiscEndpointContentTypeJson",
		"the discovery endpoint answers with Content-Type application/json")
	checkDiscoveryURL = defineCheck("CheckDiscEndpointDiscoveryUrl",
		"the discovery URL is https and ends in /.well-known/openid-configuration")
	checkDiscoveryIssuer = defineCheck("CheckDiscEndpointIssuer",
		"issuer equals the discovery URL without /.well-known/openid-configuration")
	checkDiscoveryIssuerURL = defineCheck("ValidateDiscoveryIssuerUrl",
		"issuer is an https URL with a host and no query, fragment or userinfo")
	checkDiscoveryTypes = defineCheck("ValidateServerMetadataTypes",
		"every member has the type RFC 8414 and OpenID Connect Discovery give it")
	checkDiscoveryUnknownMembers = defineCheck("CheckDiscEndpointUnexpectedMetadata",
		"the document has no members outside the registered metadata")
	checkDiscoveryResponseTypes = defineCheck("CheckDiscEndpointResponseTypesSupported",
		"response_types_supported holds at least one OpenID Connect response type")
	checkDiscoveryResponseTypesDynamic = defineCheck("CheckDiscEndpointResponseTypesSupportedDynamic",
		"response_types_supported holds code, id_token and id_token token, as dynamic OPs must")
	checkDiscoverySubjectTypes = defineCheck("CheckDiscEndpointSubjectTypesSupported",
		"subject_types_supported holds public or pairwise")
	checkDiscoveryIDTokenAlgs = defineCheck("CheckDiscEndpointIdTokenSigningAlgValuesSupportedContainsRS256",
		"id_token_signing_alg_values_supported contains RS256")
	checkDiscoveryUserinfoAlgs = defineCheck("CheckDiscEndpointUserinfoSigningAlgValuesSupported",
		"userinfo_signing_alg_values_supported, if present, is an array")
	checkDiscoveryAuthorizationEndpoint = defineCheck("CheckDiscEndpointAuthorizationEndpoint",
		"authorization_endpoint is an https URL")
	checkDiscoveryTokenEndpoint = defineCheck("CheckDiscEndpointTokenEndpoint",
		"token_endpoint is an https URL")
	checkDiscoveryUserinfoEndpoint = defineCheck("CheckDiscEndpointUserinfoEndpoint",
		"userinfo_endpoint is present and an https URL")
	checkDiscoveryRegistrationEndpoint = defineCheck("CheckDiscEndpointRegistrationEndpoint",
		"registration_endpoint, if present, is an https URL")
	checkDiscoveryJWKSURI = defineCheck("CheckJwksUri",
		"jwks_uri is an https URL")
	checkDiscoveryRequestParameter = defineCheck("CheckDiscEndpointRequestParameterSupported",
		"request_parameter_supported is true")
	checkDiscoveryRequestURIParameter = defineCheck("CheckDiscEndpointRequestUriParameterSupported",
		"request_uri_parameter_supported is true or absent")
	checkDiscoveryRequestObjectAlgs = defineCheck("CheckDiscEndpointRequestObjectSigningAlgValuesSupportedIncludesRS256",
		"request_object_signing_alg_values_supported, if present, contains RS256")
	checkDiscoveryClaimsParameter = defineCheck("CheckDiscEndpointClaimsParameterSupported",
		"claims_parameter_supported is true")
	checkDiscoveryClaimsSupported = defineCheck("CheckDiscEndpointClaimsSupported",
		"claims_supported is present and an array")
	checkDiscoveryGrantTypes = defineCheck("CheckDiscEndpointGrantTypesSupported",
		"grant_types_supported, if present, is a non-empty array")
	checkDiscoveryGrantTypesDynamic = defineCheck("CheckDiscEndpointGrantTypesSupportedContainsAuthorizationCodeAndImplicit",
		"grant_types_supported, if present, contains authorization_code and implicit, as dynamic OPs must")
	checkDiscoveryScopesOpenID = defineCheck("CheckDiscEndpointScopesSupportedContainsOpenId",
		"scopes_supported is present and contains openid")
	checkDiscoveryScopeSyntax = defineCheck("CheckDiscEndpointScopesSupportedSyntax",
		"every scopes_supported entry is a scope token of RFC 6749 §3.3")
	checkDiscoveryLocales = defineCheck("ValidateDiscoveryLocales",
		"ui_locales_supported and claims_locales_supported are well-formed BCP 47 tags with registered subtags")
	checkDiscoveryLocaleCase = defineCheck("CheckDiscoveryLocalesCanonicalCase",
		"locale tags use canonical case, such as en-US")
	checkDiscoveryEndpointsHTTPS = defineCheck("CheckDiscEndpointAllEndpointsAreHttps",
		"every member whose name ends in _endpoint is an https URL")
	checkDiscoveryCodeChallenge = defineCheck("CheckDiscEndpointCodeChallengeMethodsSupported",
		"code_challenge_methods_supported, if not empty, contains S256 or plain")
	checkDiscoveryEndSession = defineCheck("CheckDiscEndpointEndSessionEndpoint",
		"end_session_endpoint is present and an https URL")
	checkDiscoveryBackchannel = defineCheck("CheckDiscBackchannelLogoutSupported",
		"backchannel_logout_supported is true")
	checkDiscoveryBackchannelSession = defineCheck("CheckDiscBackchannelLogoutSessionSupported",
		"backchannel_logout_session_supported is true")
	checkDiscoveryFrontchannel = defineCheck("CheckDiscFrontchannelLogoutSupported",
		"frontchannel_logout_supported is true")
	checkDiscoveryFrontchannelSession = defineCheck("CheckDiscFrontchannelLogoutSessionSupported",
		"frontchannel_logout_session_supported is true")
)

// metadataKind is the JSON type of a registered metadata member.
type metadataKind int

const (
	kindString metadataKind = iota
	kindBool
	kindStringArray
	kindObject
)

// knownMetadata lists the members of RFC 8414 §2, OpenID Connect Discovery
// 1.0 §3, RP-Initiated, Front-Channel and Back-Channel Logout, Session
// Management, RFC 9207 and a few widely registered extensions, with their
// JSON types.
var knownMetadata = map[string]metadataKind{
	"issuer": kindString, "authorization_endpoint": kindString, "token_endpoint": kindString,
	"userinfo_endpoint": kindString, "jwks_uri": kindString, "registration_endpoint": kindString,
	"scopes_supported": kindStringArray, "response_types_supported": kindStringArray,
	"response_modes_supported": kindStringArray, "grant_types_supported": kindStringArray,
	"acr_values_supported": kindStringArray, "subject_types_supported": kindStringArray,
	"id_token_signing_alg_values_supported": kindStringArray, "id_token_encryption_alg_values_supported": kindStringArray,
	"id_token_encryption_enc_values_supported": kindStringArray, "userinfo_signing_alg_values_supported": kindStringArray,
	"userinfo_encryption_alg_values_supported": kindStringArray, "userinfo_encryption_enc_values_supported": kindStringArray,
	"request_object_signing_alg_values_supported": kindStringArray, "request_object_encryption_alg_values_supported": kindStringArray,
	"request_object_encryption_enc_values_supported": kindStringArray, "token_endpoint_auth_methods_supported": kindStringArray,
	"token_endpoint_auth_signing_alg_values_supported": kindStringArray, "display_values_supported": kindStringArray,
	"claim_types_supported": kindStringArray, "claims_supported": kindStringArray, "service_documentation": kindString,
	"claims_locales_supported": kindStringArray, "ui_locales_supported": kindStringArray,
	"claims_parameter_supported": kindBool, "request_parameter_supported": kindBool,
	"request_uri_parameter_supported": kindBool, "require_request_uri_registration": kindBool,
	"op_policy_uri": kindString, "op_tos_uri": kindString, "revocation_endpoint": kindString,
	"revocation_endpoint_auth_methods_supported": kindStringArray, "revocation_endpoint_auth_signing_alg_values_supported": kindStringArray,
	"introspection_endpoint": kindString, "introspection_endpoint_auth_methods_supported": kindStringArray,
	"introspection_endpoint_auth_signing_alg_values_supported": kindStringArray, "code_challenge_methods_supported": kindStringArray,
	"end_session_endpoint": kindString, "check_session_iframe": kindString,
	"frontchannel_logout_supported": kindBool, "frontchannel_logout_session_supported": kindBool,
	"backchannel_logout_supported": kindBool, "backchannel_logout_session_supported": kindBool,
	"authorization_response_iss_parameter_supported": kindBool, "prompt_values_supported": kindStringArray,
	"signed_metadata": kindString, "device_authorization_endpoint": kindString,
	"pushed_authorization_request_endpoint": kindString, "require_pushed_authorization_requests": kindBool,
	"tls_client_certificate_bound_access_tokens": kindBool, "mtls_endpoint_aliases": kindObject,
	"dpop_signing_alg_values_supported": kindStringArray, "authorization_signing_alg_values_supported": kindStringArray,
	"authorization_encryption_alg_values_supported": kindStringArray, "authorization_encryption_enc_values_supported": kindStringArray,
	"backchannel_authentication_endpoint": kindString, "backchannel_token_delivery_modes_supported": kindStringArray,
	"backchannel_authentication_request_signing_alg_values_supported": kindStringArray,
	"backchannel_user_code_parameter_supported":                       kindBool, "introspection_signing_alg_values_supported": kindStringArray,
	"introspection_encryption_alg_values_supported": kindStringArray, "introspection_encryption_enc_values_supported": kindStringArray,
	"require_signed_request_object": kindBool,
}

// verifyDiscoveryDocument makes the checks of
// oidcc-discovery-endpoint-verification. dynamic selects the stricter
// rules of the Dynamic OP profile.
func verifyDiscoveryDocument(r recorder, discoveryURL string, config *serverConfig, dynamic bool) {
	if config.Status != 200 {
		report(r, checkDiscoveryStatus, Failure, "the discovery endpoint responded with status %d", config.Status)
	}
	if config.ContentType != "application/json" {
		report(r, checkDiscoveryContentType, Failure, "Content-Type is %q, expected application/json", config.ContentType)
	}
	checkResponseTypesSupported(r, config, dynamic)

	parsed, err := url.Parse(discoveryURL)
	if err != nil || parsed.Scheme != "https" || !strings.HasSuffix(parsed.Path, discoveryPath) {
		report(r, checkDiscoveryURL, Failure, "discovery URL %q must be https and end in %s", discoveryURL, discoveryPath)
	}
	issuer := config.str("issuer")
	base := strings.TrimSuffix(discoveryURL, discoveryPath)
	if strings.TrimSuffix(issuer, "/") != strings.TrimSuffix(base, "/") {
		report(r, checkDiscoveryIssuer, Failure, "issuer %q does not match the discovery URL's base %q", issuer, base)
	}
	checkIssuerURL(r, issuer)
	checkMetadataTypes(r, config)

	if types, _ := config.stringList("subject_types_supported"); !slices.Contains(types, "public") && !slices.Contains(types, "pairwise") {
		report(r, checkDiscoverySubjectTypes, Failure, "subject_types_supported %v holds neither public nor pairwise", types)
	}
	if algs, _ := config.stringList("id_token_signing_alg_values_supported"); !slices.Contains(algs, "RS256") {
		report(r, checkDiscoveryIDTokenAlgs, Failure, "id_token_signing_alg_values_supported %v does not contain RS256", algs)
	}
	if v, present := config.Raw["userinfo_signing_alg_values_supported"]; present {
		if _, ok := stringArray(v); !ok {
			report(r, checkDiscoveryUserinfoAlgs, Failure, "userinfo_signing_alg_values_supported is not an array of strings")
		}
	}
	checkHTTPSMember(r, config, "authorization_endpoint", checkDiscoveryAuthorizationEndpoint, true)
	checkHTTPSMember(r, config, "token_endpoint", checkDiscoveryTokenEndpoint, true)
	if _, present := config.Raw["userinfo_endpoint"]; !present {
		report(r, checkDiscoveryUserinfoEndpoint, Warning, "userinfo_endpoint is missing")
	} else {
		checkHTTPSMember(r, config, "userinfo_endpoint", checkDiscoveryUserinfoEndpoint, true)
	}
	checkHTTPSMember(r, config, "registration_endpoint", checkDiscoveryRegistrationEndpoint, false)
	checkHTTPSMember(r, config, "jwks_uri", checkDiscoveryJWKSURI, true)

	if !config.boolean("request_parameter_supported") {
		report(r, checkDiscoveryRequestParameter, Info, "request_parameter_supported is not true")
	}
	if v, present := config.Raw["request_uri_parameter_supported"]; present && v != true {
		report(r, checkDiscoveryRequestURIParameter, Info, "request_uri_parameter_supported is %v", v)
	}
	if algs, present := config.stringList("request_object_signing_alg_values_supported"); present && !slices.Contains(algs, "RS256") {
		report(r, checkDiscoveryRequestObjectAlgs, Warning, "request_object_signing_alg_values_supported %v does not contain RS256", algs)
	}
	if !config.boolean("claims_parameter_supported") {
		report(r, checkDiscoveryClaimsParameter, Info, "claims_parameter_supported is not true")
	}
	if _, ok := config.stringList("claims_supported"); !ok {
		report(r, checkDiscoveryClaimsSupported, Warning, "claims_supported is missing or not an array of strings")
	}
	checkGrantTypesSupported(r, config, dynamic)
	checkScopesSupported(r, config)
	for _, name := range []string{"ui_locales_supported", "claims_locales_supported"} {
		tags, _ := config.stringList(name)
		checkLocales(r, name, tags)
	}
	checkAllEndpointsHTTPS(r, config)
	if methods, present := config.stringList("code_challenge_methods_supported"); present && len(methods) > 0 &&
		!slices.Contains(methods, "S256") && !slices.Contains(methods, "plain") {
		report(r, checkDiscoveryCodeChallenge, Failure, "code_challenge_methods_supported %v contains neither S256 nor plain", methods)
	}
}

func checkResponseTypesSupported(r recorder, config *serverConfig, dynamic bool) {
	listed, ok := config.stringList("response_types_supported")
	if !ok {
		report(r, checkDiscoveryResponseTypes, Failure, "response_types_supported is missing or not an array of strings")
		return
	}
	normalized := make([]string, 0, len(listed))
	for _, rt := range listed {
		normalized = append(normalized, normalizeResponseType(rt))
	}
	if dynamic {
		for _, required := range []string{"code", "id_token", "id_token token"} {
			if !slices.Contains(normalized, required) {
				report(r, checkDiscoveryResponseTypesDynamic, Failure, "response_types_supported %v lacks %q", listed, required)
			}
		}
		return
	}
	if !slices.ContainsFunc(normalized, isOIDCResponseType) {
		report(r, checkDiscoveryResponseTypes, Failure, "response_types_supported %v holds no OpenID Connect response type", listed)
	}
}

func checkIssuerURL(r recorder, issuer string) {
	u, err := url.Parse(issuer)
	switch {
	case err != nil:
		report(r, checkDiscoveryIssuerURL, Failure, "issuer %q is not a URL: %v", issuer, err)
	case u.Scheme != "https":
		report(r, checkDiscoveryIssuerURL, Failure, "issuer %q is not https", issuer)
	case u.Host == "":
		report(r, checkDiscoveryIssuerURL, Failure, "issuer %q has no host", issuer)
	case u.RawQuery != "" || u.ForceQuery:
		report(r, checkDiscoveryIssuerURL, Failure, "issuer %q has a query", issuer)
	case u.Fragment != "" || strings.Contains(issuer, "#"):
		report(r, checkDiscoveryIssuerURL, Failure, "issuer %q has a fragment", issuer)
	case u.User != nil:
		report(r, checkDiscoveryIssuerURL, Failure, "issuer %q has userinfo", issuer)
	}
}

func checkMetadataTypes(r recorder, config *serverConfig) {
	var unknown []string
	for name, value := range config.Raw {
		kind, known := knownMetadata[name]
		if !known {
			unknown = append(unknown, name)
			continue
		}
		ok := true
		switch kind {
		case kindString:
			_, ok = value.(string)
		case kindBool:
			_, ok = value.(bool)
		case kindStringArray:
			_, ok = stringArray(value)
		case kindObject:
			_, ok = value.(map[string]any)
		}
		if !ok {
			report(r, checkDiscoveryTypes, Failure, "%s has the wrong JSON type: %s", name, compactJSON(value))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		report(r, checkDiscoveryUnknownMembers, Warning, "unregistered members: %s", strings.Join(unknown, ", "))
	}
}

// checkHTTPSMember checks that the named member is a string holding an
// https URL with a host. A missing member fails only when required.
func checkHTTPSMember(r recorder, config *serverConfig, name string, c *Check, required bool) {
	value, present := config.Raw[name]
	if !present {
		if required {
			report(r, c, Failure, "%s is missing", name)
		}
		return
	}
	s, ok := value.(string)
	if !ok {
		report(r, c, Failure, "%s is not a string", name)
		return
	}
	if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
		report(r, c, Failure, "%s %q is not an https URL", name, s)
	}
}

func checkGrantTypesSupported(r recorder, config *serverConfig, dynamic bool) {
	value, present := config.Raw["grant_types_supported"]
	if !present {
		return
	}
	grants, ok := stringArray(value)
	if dynamic {
		for _, required := range []string{"authorization_code", "implicit"} {
			if !slices.Contains(grants, required) {
				report(r, checkDiscoveryGrantTypesDynamic, Failure, "grant_types_supported %v lacks %s", grants, required)
			}
		}
		return
	}
	if !ok || len(grants) == 0 {
		report(r, checkDiscoveryGrantTypes, Failure, "grant_types_supported is not a non-empty array of strings")
	}
}

func checkScopesSupported(r recorder, config *serverConfig) {
	value, present := config.Raw["scopes_supported"]
	if !present {
		report(r, checkDiscoveryScopesOpenID, Warning, "scopes_supported is missing")
		return
	}
	scopes, _ := stringArray(value)
	if !slices.Contains(scopes, "openid") {
		report(r, checkDiscoveryScopesOpenID, Failure, "scopes_supported %v does not contain openid", scopes)
	}
	for _, scope := range scopes {
		// scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
		if scope == "" || !inRanges(scope, 0x21, 0x21, 0x23, 0x5B, 0x5D, 0x7E) {
			report(r, checkDiscoveryScopeSyntax, Failure, "scopes_supported entry %q is not a valid scope token", scope)
		}
	}
}

func checkLocales(r recorder, member string, tags []string) {
	for _, tag := range tags {
		if strings.Contains(tag, "_") {
			// golang.org/x/text/language accepts "en_US", but BCP 47
			// separates subtags with "-" only.
			report(r, checkDiscoveryLocales, Failure, "%s entry %q is not a valid BCP 47 tag: subtags are separated by \"-\", not \"_\"", member, tag)
			continue
		}
		parsed, err := language.Parse(tag)
		if err != nil {
			report(r, checkDiscoveryLocales, Failure, "%s entry %q is not a valid BCP 47 tag: %v", member, tag, err)
			continue
		}
		if canonical := parsed.String(); canonical != tag && strings.EqualFold(canonical, tag) {
			report(r, checkDiscoveryLocaleCase, Warning, "%s entry %q is not in canonical case %q", member, tag, canonical)
		}
	}
}

func checkAllEndpointsHTTPS(r recorder, config *serverConfig) {
	names := make([]string, 0, len(config.Raw))
	for name := range config.Raw {
		if strings.HasSuffix(name, "_endpoint") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s, ok := config.Raw[name].(string)
		u, err := url.Parse(s)
		if !ok || err != nil || u.Scheme != "https" || u.Host == "" {
			report(r, checkDiscoveryEndpointsHTTPS, Failure, "%s %s is not an https URL", name, compactJSON(config.Raw[name]))
		}
	}
}

// verifyLogoutDiscovery makes the checks of the three logout discovery
// modules. channel is "", "backchannel" or "frontchannel".
func verifyLogoutDiscovery(r recorder, config *serverConfig, channel string) {
	if config.Status != 200 {
		report(r, checkDiscoveryStatus, Failure, "the discovery endpoint responded with status %d", config.Status)
	}
	if config.ContentType != "application/json" {
		report(r, checkDiscoveryContentType, Failure, "Content-Type is %q, expected application/json", config.ContentType)
	}
	checkAllEndpointsHTTPS(r, config)
	checkHTTPSMember(r, config, "end_session_endpoint", checkDiscoveryEndSession, true)
	switch channel {
	case "backchannel":
		if !config.boolean("backchannel_logout_supported") {
			report(r, checkDiscoveryBackchannel, Failure, "backchannel_logout_supported is not true")
		}
		if !config.boolean("backchannel_logout_session_supported") {
			report(r, checkDiscoveryBackchannelSession, Failure, "backchannel_logout_session_supported is not true")
		}
	case "frontchannel":
		if !config.boolean("frontchannel_logout_supported") {
			report(r, checkDiscoveryFrontchannel, Failure, "frontchannel_logout_supported is not true")
		}
		if !config.boolean("frontchannel_logout_session_supported") {
			report(r, checkDiscoveryFrontchannelSession, Failure, "frontchannel_logout_session_supported is not true")
		}
	}
}

func compactJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
