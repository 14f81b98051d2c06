package provider

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/storage"
)

// RegistrationMode selects who may register clients at the registration
// endpoint (RFC 7591).
type RegistrationMode string

// Registration modes. The zero value means RegistrationOff.
const (
	// RegistrationOff serves no registration endpoint. Clients are created
	// with the CLI only.
	RegistrationOff RegistrationMode = "off"
	// RegistrationOpen lets anyone register a client. Dynamically
	// registered clients never skip consent and can request only the
	// standard OpenID Connect scopes, so this is what the OpenID Foundation's
	// Dynamic OP certification expects.
	RegistrationOpen RegistrationMode = "open"
	// RegistrationToken requires Config.RegistrationToken as a Bearer
	// initial access token (RFC 7591 §3).
	RegistrationToken RegistrationMode = "token"
)

// MinRegistrationTokenLength is the shortest initial access token accepted,
// in characters.
const MinRegistrationTokenLength = 32

// CheckRegistrationSettings checks a registration mode and the initial
// access token it needs.
func CheckRegistrationSettings(mode RegistrationMode, token string) error {
	switch mode {
	case "", RegistrationOff, RegistrationOpen:
		return nil
	case RegistrationToken:
		if len(token) < MinRegistrationTokenLength {
			return fmt.Errorf("registration mode %q needs an initial access token of at least %d characters, got %d",
				mode, MinRegistrationTokenLength, len(token))
		}
		return nil
	default:
		return fmt.Errorf("registration mode %q is not one of off, open, token", mode)
	}
}

// Purposes of the keys this file derives from the system secret.
const (
	purposeRegistrationToken = "latchkey registration access token hash v1"
	purposeClientSecretSeal  = "latchkey client secret sealing v1"
)

// registrationScopes are the scopes a dynamically registered client may
// register, and gets when it names none. The scopes of Latchkey's own APIs
// (account, admin, roles) are never among them.
var registrationScopes = []string{"openid", "profile", "email", "address", "phone", "offline_access"}

// Metadata values Latchkey accepts.
var (
	knownGrantTypes  = []string{"authorization_code", "implicit", "refresh_token", "client_credentials"}
	knownAuthMethods = []string{
		"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none",
	}
	// knownResponseTypes are written in canonical word order: code, id_token, token.
	knownResponseTypes = []string{"code", "id_token", "id_token token", "code id_token", "code token", "code id_token token"}
	signedResponseAlgs = []string{AlgRS256, AlgES256}
)

// Limits on client metadata. They are far above what real clients
// register, and keep one client from filling the database.
const (
	maxMetadataListLength = 20
	maxURILength          = 2000
	maxTextLength         = 300
	maxRegisteredKeys     = 20
)

// Error codes of RFC 7591 §3.2.2.
const (
	errInvalidClientMetadata = "invalid_client_metadata"
	errInvalidRedirectURI    = "invalid_redirect_uri"
)

// ClientRegistration is client metadata as RFC 7591 §2 and OpenID Connect
// Dynamic Client Registration 1.0 §2 define it: the body of a registration
// request, and, filled from a stored client, the metadata part of the
// response. The CLI builds one from its flags, so both paths share the
// same validation.
type ClientRegistration struct {
	RedirectURIs    []string `json:"redirect_uris,omitempty"`
	ResponseTypes   []string `json:"response_types,omitempty"`
	GrantTypes      []string `json:"grant_types,omitempty"`
	ApplicationType string   `json:"application_type,omitempty"`
	ClientName      string   `json:"client_name,omitempty"`
	Contacts        []string `json:"contacts,omitempty"`
	LogoURI         string   `json:"logo_uri,omitempty"`
	ClientURI       string   `json:"client_uri,omitempty"`
	PolicyURI       string   `json:"policy_uri,omitempty"`
	TOSURI          string   `json:"tos_uri,omitempty"`
	// Scope is space-separated.
	Scope                       string          `json:"scope,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	SubjectType                 string          `json:"subject_type,omitempty"`
	SectorIdentifierURI         string          `json:"sector_identifier_uri,omitempty"`
	IDTokenSignedResponseAlg    string          `json:"id_token_signed_response_alg,omitempty"`
	UserinfoSignedResponseAlg   string          `json:"userinfo_signed_response_alg,omitempty"`
	RequestObjectSigningAlg     string          `json:"request_object_signing_alg,omitempty"`
	TokenEndpointAuthMethod     string          `json:"token_endpoint_auth_method,omitempty"`
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	// InitiateLoginURI is checked but not stored: Latchkey never starts a
	// login at the client.
	InitiateLoginURI       string   `json:"initiate_login_uri,omitempty"`
	RequestURIs            []string `json:"request_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`

	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  *bool  `json:"backchannel_logout_session_required,omitempty"`
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired *bool  `json:"frontchannel_logout_session_required,omitempty"`

	// Encryption is not supported. A client that registers any of these
	// expects encrypted responses, so it is rejected rather than ignored.
	IDTokenEncryptedResponseAlg  string `json:"id_token_encrypted_response_alg,omitempty"`
	IDTokenEncryptedResponseEnc  string `json:"id_token_encrypted_response_enc,omitempty"`
	UserinfoEncryptedResponseAlg string `json:"userinfo_encrypted_response_alg,omitempty"`
	UserinfoEncryptedResponseEnc string `json:"userinfo_encrypted_response_enc,omitempty"`
	RequestObjectEncryptionAlg   string `json:"request_object_encryption_alg,omitempty"`
	RequestObjectEncryptionEnc   string `json:"request_object_encryption_enc,omitempty"`
}

// MetadataProblem is one invalid metadata value.
type MetadataProblem struct {
	// Code is invalid_redirect_uri or invalid_client_metadata.
	Code string
	// Field is the metadata member, such as redirect_uris.
	Field string
	// Reason describes what is wrong with the value and how to fix it.
	Reason string
}

// InvalidMetadataError lists every problem found in client metadata.
type InvalidMetadataError struct {
	Problems []MetadataProblem
}

func (e *InvalidMetadataError) Error() string {
	messages := make([]string, 0, len(e.Problems))
	for _, problem := range e.Problems {
		messages = append(messages, problem.Field+" "+problem.Reason)
	}
	return strings.Join(messages, "; ")
}

// code is the error code of the first problem, which RFC 7591 §3.2.2
// allows a response to carry.
func (e *InvalidMetadataError) code() string {
	return e.Problems[0].Code
}

// metadataChecker collects problems while a ClientRegistration is checked.
type metadataChecker struct {
	problems []MetadataProblem
}

func (m *metadataChecker) reject(code, field, format string, args ...any) {
	m.problems = append(m.problems, MetadataProblem{Code: code, Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (m *metadataChecker) err() error {
	if len(m.problems) == 0 {
		return nil
	}
	return &InvalidMetadataError{Problems: m.problems}
}

// NewClient checks the metadata and returns the client it describes,
// without id, secrets or creation time. allowedScopes limits the scope
// member, and is also the default when scope is empty. A nil allowedScopes
// accepts any scope. The error is an *InvalidMetadataError naming every
// problem.
//
// The rules are those of RFC 7591 §2 and OpenID Connect Dynamic Client
// Registration 1.0 §2, plus Latchkey's own. Every URL uses https, or http
// on a loopback host. Unsigned ID tokens, encryption and pairwise subject
// identifiers are not supported.
func (r *ClientRegistration) NewClient(allowedScopes []string) (*storage.Client, error) {
	m := &metadataChecker{}
	client := &storage.Client{}

	client.TokenEndpointAuthMethod = m.authMethod(r.TokenEndpointAuthMethod)
	client.Public = client.TokenEndpointAuthMethod == "none"
	client.GrantTypes = m.grantTypes(r.GrantTypes, client.Public)
	client.ResponseTypes = m.responseTypes(r.ResponseTypes, client.GrantTypes)
	signsIn := slices.Contains(client.GrantTypes, "authorization_code") || slices.Contains(client.GrantTypes, "implicit")
	client.RedirectURIs = m.redirectURIs(r.RedirectURIs, signsIn)
	client.PostLogoutRedirectURIs = m.uriList("post_logout_redirect_uris", r.PostLogoutRedirectURIs, false)
	client.Scopes = m.scopes(r.Scope, allowedScopes)
	client.Name = m.text("client_name", r.ClientName)

	if r.IDTokenSignedResponseAlg == "none" {
		m.reject(errInvalidClientMetadata, "id_token_signed_response_alg", "none is not supported: Latchkey signs every ID token with RS256 or ES256")
	} else {
		client.IDTokenSignedResponseAlg = m.choice("id_token_signed_response_alg", r.IDTokenSignedResponseAlg, signedResponseAlgs, AlgRS256)
	}
	metadata := &client.Metadata
	metadata.UserinfoSignedResponseAlg = m.choice("userinfo_signed_response_alg", r.UserinfoSignedResponseAlg, signedResponseAlgs, "")
	metadata.RequestObjectSigningAlg = m.choice("request_object_signing_alg", r.RequestObjectSigningAlg, requestObjectAlgorithms, "")
	metadata.TokenEndpointAuthSigningAlg = m.assertionAlgorithm(r.TokenEndpointAuthSigningAlg, client.TokenEndpointAuthMethod)

	metadata.JWKSURI = m.uri("jwks_uri", r.JWKSURI, false)
	metadata.JWKS = m.keySet(r.JWKS)
	m.keysPresence(r, client)

	metadata.RequestURIs = m.uriList("request_uris", r.RequestURIs, true)
	metadata.LogoURI = m.uri("logo_uri", r.LogoURI, false)
	metadata.ClientURI = m.uri("client_uri", r.ClientURI, false)
	metadata.PolicyURI = m.uri("policy_uri", r.PolicyURI, false)
	metadata.TOSURI = m.uri("tos_uri", r.TOSURI, false)
	metadata.Contacts = m.contacts(r.Contacts)
	m.logoutURIs(r, client, signsIn)
	m.unsupported(r)
	return client, m.err()
}

func (m *metadataChecker) authMethod(method string) string {
	if method == "" {
		return "client_secret_basic"
	}
	if !slices.Contains(knownAuthMethods, method) {
		m.reject(errInvalidClientMetadata, "token_endpoint_auth_method", "%q is not supported: use one of %s",
			method, strings.Join(knownAuthMethods, ", "))
	}
	return method
}

// grantTypes checks grant_types, which default to authorization_code.
func (m *metadataChecker) grantTypes(grantTypes []string, public bool) []string {
	if len(grantTypes) == 0 {
		return []string{"authorization_code"}
	}
	checked := make([]string, 0, len(grantTypes))
	for _, grantType := range grantTypes {
		if !slices.Contains(knownGrantTypes, grantType) {
			m.reject(errInvalidClientMetadata, "grant_types", "has unknown grant type %q: use %s",
				grantType, strings.Join(knownGrantTypes, ", "))
			continue
		}
		if !slices.Contains(checked, grantType) {
			checked = append(checked, grantType)
		}
	}
	if public && slices.Contains(checked, "client_credentials") {
		m.reject(errInvalidClientMetadata, "grant_types", "contains client_credentials, but a public client (token_endpoint_auth_method none) cannot use client_credentials")
	}
	return checked
}

// responseTypes checks response_types and their consistency with the grant
// types (RFC 7591 §2.1). They default to code when the client has the
// authorization_code grant, and to none otherwise.
func (m *metadataChecker) responseTypes(responseTypes, grantTypes []string) []string {
	if len(responseTypes) == 0 {
		if slices.Contains(grantTypes, "authorization_code") {
			return []string{"code"}
		}
		return []string{}
	}
	checked := make([]string, 0, len(responseTypes))
	for _, responseType := range responseTypes {
		normalized := normalizeResponseType(responseType)
		if !slices.Contains(knownResponseTypes, normalized) {
			m.reject(errInvalidClientMetadata, "response_types", "has unsupported response type %q: use %s",
				responseType, strings.Join(knownResponseTypes, ", "))
			continue
		}
		for _, grantType := range grantTypesFor(normalized) {
			if !slices.Contains(grantTypes, grantType) {
				m.reject(errInvalidClientMetadata, "grant_types", "lacks %s, which response type %q needs", grantType, normalized)
			}
		}
		if !slices.Contains(checked, normalized) {
			checked = append(checked, normalized)
		}
	}
	return checked
}

// normalizeResponseType writes a response type's words in canonical order,
// because their order carries no meaning (RFC 6749 §3.1.1).
func normalizeResponseType(responseType string) string {
	order := map[string]int{"code": 1, "id_token": 2, "token": 3}
	words := strings.Fields(responseType)
	slices.SortStableFunc(words, func(a, b string) int { return order[a] - order[b] })
	return strings.Join(words, " ")
}

// grantTypesFor returns the grant types a response type uses: code needs
// authorization_code, and id_token or token returned from the
// authorization endpoint need implicit.
func grantTypesFor(responseType string) []string {
	var grantTypes []string
	words := strings.Fields(responseType)
	if slices.Contains(words, "code") {
		grantTypes = append(grantTypes, "authorization_code")
	}
	if slices.Contains(words, "id_token") || slices.Contains(words, "token") {
		grantTypes = append(grantTypes, "implicit")
	}
	return grantTypes
}

// redirectURIs checks redirect_uris, required for the grants that redirect.
func (m *metadataChecker) redirectURIs(uris []string, required bool) []string {
	if required && len(uris) == 0 {
		m.reject(errInvalidRedirectURI, "redirect_uris", "is required for the authorization_code and implicit grants")
	}
	return m.uriList("redirect_uris", uris, false)
}

func (m *metadataChecker) uriList(field string, uris []string, allowFragment bool) []string {
	if len(uris) > maxMetadataListLength {
		m.reject(errInvalidClientMetadata, field, "has %d entries: at most %d are allowed", len(uris), maxMetadataListLength)
		return nil
	}
	checked := make([]string, 0, len(uris))
	for _, raw := range uris {
		if normalized := m.uri(field, raw, allowFragment); normalized != "" && !slices.Contains(checked, normalized) {
			checked = append(checked, normalized)
		}
	}
	return checked
}

// uri checks one URL and returns it as url.URL.String writes it, because
// fosite matches redirect URIs against that form. It returns "" when raw
// is empty or invalid. Every URL must be absolute and use https or http on
// a loopback host. It carries no fragment unless allowFragment.
func (m *metadataChecker) uri(field, raw string, allowFragment bool) string {
	if raw == "" {
		return ""
	}
	code := errInvalidClientMetadata
	if field == "redirect_uris" {
		code = errInvalidRedirectURI
	}

	if len(raw) > maxURILength {
		m.reject(code, field, "has a URL longer than %d characters", maxURILength)
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		m.reject(code, field, "%q is not an absolute URI", raw)
		return ""
	}
	if !allowFragment && (u.Fragment != "" || strings.Contains(raw, "#")) {
		m.reject(code, field, "%q must not contain a fragment", raw)
		return ""
	}
	if u.Host == "" {
		m.reject(code, field, "%q has no host: use an https URL such as https://app.example.com/callback", raw)
		return ""
	}
	if u.User != nil {
		m.reject(code, field, "%q must not contain a user name or password", raw)
		return ""
	}
	if !ValidURLHost(u.Host) {
		m.reject(code, field, "%q has a host that is not a DNS name or an IP address", raw)
		return ""
	}

	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && backchannel.IsLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		m.reject(code, field, "%q uses http on a non-loopback host: use https", raw)
		return ""
	default:
		m.reject(code, field, "%q must use https", raw)
		return ""
	}
	return u.String()
}

// scopes checks the space-separated scope member.
func (m *metadataChecker) scopes(scope string, allowed []string) []string {
	requested := strings.Fields(scope)
	if len(requested) == 0 {
		return slices.Clone(allowed)
	}
	checked := make([]string, 0, len(requested))
	for _, name := range requested {
		switch {
		case allowed != nil && !slices.Contains(allowed, name):
			m.reject(errInvalidClientMetadata, "scope", "contains %q, which is not available: use %s",
				name, strings.Join(allowed, " "))
		case !isScopeToken(name):
			m.reject(errInvalidClientMetadata, "scope", "contains %q, which is not a valid scope token", name)
		case !slices.Contains(checked, name):
			checked = append(checked, name)
		}
	}
	return checked
}

// isScopeToken reports whether s is a scope-token of RFC 6749 §3.3.
func isScopeToken(s string) bool {
	for _, r := range s {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return s != ""
}

// text checks a human-readable value such as client_name.
func (m *metadataChecker) text(field, value string) string {
	value = strings.TrimSpace(value)
	if len(value) > maxTextLength {
		m.reject(errInvalidClientMetadata, field, "is longer than %d bytes", maxTextLength)
		return ""
	}
	if strings.ContainsFunc(value, unicode.IsControl) {
		m.reject(errInvalidClientMetadata, field, "contains control characters")
		return ""
	}
	return value
}

func (m *metadataChecker) contacts(contacts []string) []string {
	if len(contacts) > maxMetadataListLength {
		m.reject(errInvalidClientMetadata, "contacts", "has %d entries: at most %d are allowed", len(contacts), maxMetadataListLength)
		return nil
	}
	checked := make([]string, 0, len(contacts))
	for _, contact := range contacts {
		if contact = m.text("contacts", contact); contact != "" {
			checked = append(checked, contact)
		}
	}
	if len(checked) == 0 {
		return nil
	}
	return checked
}

// choice checks that value is one of allowed, and returns fallback when it
// is empty.
func (m *metadataChecker) choice(field, value string, allowed []string, fallback string) string {
	if value == "" {
		return fallback
	}
	if !slices.Contains(allowed, value) {
		m.reject(errInvalidClientMetadata, field, "%q is not supported: use %s", value, strings.Join(allowed, " or "))
		return fallback
	}
	return value
}

// assertionAlgorithm checks token_endpoint_auth_signing_alg, which only the
// two JWT authentication methods use: HMAC algorithms for
// client_secret_jwt, public-key algorithms for private_key_jwt.
func (m *metadataChecker) assertionAlgorithm(algorithm, method string) string {
	if algorithm == "" {
		return ""
	}
	const field = "token_endpoint_auth_signing_alg"
	var allowed []jose.SignatureAlgorithm
	switch method {
	case "client_secret_jwt":
		allowed = secretAssertionAlgorithms
	case "private_key_jwt":
		allowed = keyAssertionAlgorithms
	default:
		m.reject(errInvalidClientMetadata, field, "applies only to token_endpoint_auth_method client_secret_jwt or private_key_jwt, not %s", method)
		return ""
	}
	if !slices.Contains(allowed, jose.SignatureAlgorithm(algorithm)) {
		m.reject(errInvalidClientMetadata, field, "%q is not supported with %s: use %s", algorithm, method, joinAlgorithms(allowed))
		return ""
	}
	return algorithm
}

func joinAlgorithms(algorithms []jose.SignatureAlgorithm) string {
	names := make([]string, len(algorithms))
	for i, algorithm := range algorithms {
		names[i] = string(algorithm)
	}
	return strings.Join(names, ", ")
}

// keySet checks jwks: a JSON Web Key Set (RFC 7517 §5) of valid public
// keys. It returns the set compacted, or nil when raw is empty or null.
func (m *metadataChecker) keySet(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		m.reject(errInvalidClientMetadata, "jwks", "is not a JSON Web Key Set: %v", err)
		return nil
	}
	switch {
	case len(set.Keys) == 0:
		m.reject(errInvalidClientMetadata, "jwks", "contains no keys")
		return nil
	case len(set.Keys) > maxRegisteredKeys:
		m.reject(errInvalidClientMetadata, "jwks", "has %d keys: at most %d are allowed", len(set.Keys), maxRegisteredKeys)
		return nil
	}
	valid := true
	for i, rawKey := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(rawKey); err != nil {
			m.reject(errInvalidClientMetadata, "jwks", "key %d is not a valid JSON Web Key: %v", i, err)
			valid = false
			continue
		}
		if !key.IsPublic() || !key.Valid() {
			m.reject(errInvalidClientMetadata, "jwks", "key %d is not a valid public key: register only public keys, never private or symmetric ones", i)
			valid = false
		}
	}
	if !valid {
		return nil
	}
	var compacted bytes.Buffer
	if err := json.Compact(&compacted, raw); err != nil {
		m.reject(errInvalidClientMetadata, "jwks", "is not valid JSON: %v", err)
		return nil
	}
	return compacted.Bytes()
}

// keysPresence checks that the keys a client needs are registered, and in
// one way only.
func (m *metadataChecker) keysPresence(r *ClientRegistration, client *storage.Client) {
	hasJWKS := len(client.Metadata.JWKS) > 0 || (len(r.JWKS) > 0 && string(r.JWKS) != "null")
	hasJWKSURI := r.JWKSURI != ""
	if hasJWKS && hasJWKSURI {
		m.reject(errInvalidClientMetadata, "jwks", "and jwks_uri must not both be registered: use one of them")
	}
	if client.TokenEndpointAuthMethod == "private_key_jwt" && !hasJWKS && !hasJWKSURI {
		m.reject(errInvalidClientMetadata, "token_endpoint_auth_method", "private_key_jwt needs the client's public keys: register jwks or jwks_uri")
	}
	if algorithm := client.Metadata.RequestObjectSigningAlg; algorithm != "" && algorithm != "none" && !hasJWKS && !hasJWKSURI {
		m.reject(errInvalidClientMetadata, "request_object_signing_alg", "%s needs the client's public keys: register jwks or jwks_uri", algorithm)
	}
}

// logoutURIs checks the back-channel (OpenID Connect Back-Channel Logout
// 1.0 §2.2) and front-channel (Front-Channel Logout 1.0 §2) logout URIs.
// Both sign a person out of the client, so they need a grant that signs
// people in. The front-channel one is loaded in the person's browser and
// must share scheme, host and port with a redirect URI (§2).
func (m *metadataChecker) logoutURIs(r *ClientRegistration, client *storage.Client, signsIn bool) {
	client.BackchannelLogoutURI = m.uri("backchannel_logout_uri", r.BackchannelLogoutURI, false)
	if client.BackchannelLogoutURI != "" {
		client.BackchannelLogoutSessionRequired = r.BackchannelLogoutSessionRequired != nil && *r.BackchannelLogoutSessionRequired
		if !signsIn {
			m.reject(errInvalidClientMetadata, "backchannel_logout_uri", "needs the authorization_code grant or the implicit grant, because only a client that signs people in gets logout tokens")
		}
	}

	frontchannel := m.uri("frontchannel_logout_uri", r.FrontchannelLogoutURI, false)
	client.Metadata.FrontchannelLogoutURI = frontchannel
	if frontchannel == "" {
		return
	}
	client.Metadata.FrontchannelLogoutSessionRequired = r.FrontchannelLogoutSessionRequired != nil && *r.FrontchannelLogoutSessionRequired
	if !signsIn {
		m.reject(errInvalidClientMetadata, "frontchannel_logout_uri", "needs the authorization_code grant or the implicit grant, because only a client that signs people in is logged out")
		return
	}
	logoutURL, _ := url.Parse(frontchannel)
	for _, redirectURI := range client.RedirectURIs {
		redirectURL, err := url.Parse(redirectURI)
		if err == nil && redirectURL.Scheme == logoutURL.Scheme && redirectURL.Host == logoutURL.Host {
			return
		}
	}
	m.reject(errInvalidClientMetadata, "frontchannel_logout_uri", "%q must have the scheme, host and port of a redirect URI", frontchannel)
}

// unsupported rejects metadata Latchkey cannot honour, and checks values
// that it accepts but does not store.
func (m *metadataChecker) unsupported(r *ClientRegistration) {
	switch r.SubjectType {
	case "", "public":
	case "pairwise":
		m.reject(errInvalidClientMetadata, "subject_type", "pairwise subject identifiers are not supported: use public")
	default:
		m.reject(errInvalidClientMetadata, "subject_type", "%q is not supported: use public", r.SubjectType)
	}
	if r.SectorIdentifierURI != "" {
		m.reject(errInvalidClientMetadata, "sector_identifier_uri", "is not accepted, because pairwise subject identifiers are not supported")
	}
	encryption := map[string]string{
		"id_token_encrypted_response_alg": r.IDTokenEncryptedResponseAlg,
		"id_token_encrypted_response_enc": r.IDTokenEncryptedResponseEnc,
		"userinfo_encrypted_response_alg": r.UserinfoEncryptedResponseAlg,
		"userinfo_encrypted_response_enc": r.UserinfoEncryptedResponseEnc,
		"request_object_encryption_alg":   r.RequestObjectEncryptionAlg,
		"request_object_encryption_enc":   r.RequestObjectEncryptionEnc,
	}
	for _, field := range slices.Sorted(maps.Keys(encryption)) {
		if encryption[field] != "" {
			m.reject(errInvalidClientMetadata, field, "is not supported: Latchkey does not encrypt ID tokens or userinfo responses, nor decrypt request objects")
		}
	}
	if r.ApplicationType != "" && r.ApplicationType != "web" && r.ApplicationType != "native" {
		m.reject(errInvalidClientMetadata, "application_type", "%q is not one of web, native", r.ApplicationType)
	}
	if r.InitiateLoginURI != "" {
		if u, err := url.Parse(r.InitiateLoginURI); err != nil || u.Scheme != "https" || u.Host == "" || u.Fragment != "" {
			m.reject(errInvalidClientMetadata, "initiate_login_uri", "%q must be an absolute https URL without a fragment", r.InitiateLoginURI)
		}
	}
}

// ClientSecrets issues client secrets and keeps them in the form the
// provider checks them in: a keyed hash of every secret, and for
// client_secret_jwt also the secret itself, sealed, because verifying an
// HMAC needs the key.
type ClientSecrets struct {
	hasher *SecretHasher
	sealer *Sealer
}

// NewClientSecrets derives the hashing and sealing keys from the system
// secret.
func NewClientSecrets(systemSecret []byte) (*ClientSecrets, error) {
	hasher, err := NewSecretHasher(systemSecret)
	if err != nil {
		return nil, err
	}
	key, err := DeriveKey(systemSecret, purposeClientSecretSeal)
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(key)
	if err != nil {
		return nil, err
	}
	return &ClientSecrets{hasher: hasher, sealer: sealer}, nil
}

// Issue generates a secret for the client's token endpoint auth method,
// stores its hash in client.SecretHash and, for client_secret_jwt, the
// sealed secret in client.Metadata.SealedSecret, and returns the secret.
// Methods without a secret (none, private_key_jwt) get "" and both fields
// cleared. client.ID must be set, because the sealed secret is bound to it.
func (s *ClientSecrets) Issue(ctx context.Context, client *storage.Client) (string, error) {
	client.SecretHash, client.Metadata.SealedSecret = nil, nil
	var secret string
	switch client.TokenEndpointAuthMethod {
	case "none", "private_key_jwt":
		return "", nil
	case "client_secret_jwt":
		// 512 bits, so that HS512, whose key must be that long, works too.
		secret = randomToken(64)
	default:
		secret = GenerateClientSecret()
	}

	hash, err := s.hasher.Hash(ctx, []byte(secret))
	if err != nil {
		return "", err
	}
	client.SecretHash = hash
	if client.TokenEndpointAuthMethod == "client_secret_jwt" {
		client.Metadata.SealedSecret = s.sealer.Seal([]byte(secret), []byte(client.ID))
	}
	return secret, nil
}

// matches reports, in constant time, whether secret is the client's secret.
func (s *ClientSecrets) matches(ctx context.Context, client *storage.Client, secret string) bool {
	return len(client.SecretHash) > 0 && s.hasher.Compare(ctx, client.SecretHash, []byte(secret)) == nil
}

// unseal returns the secret of a client_secret_jwt client.
func (s *ClientSecrets) unseal(client *storage.Client) ([]byte, error) {
	if len(client.Metadata.SealedSecret) == 0 {
		return nil, errors.New("the client has no sealed secret")
	}
	return s.sealer.Open(client.Metadata.SealedSecret, []byte(client.ID))
}

// carryOver gives updated, the new registration of current, the secret its
// auth method needs: the current one when its stored form suffices, a new
// one otherwise. It returns a new secret, or "" when it kept the old one or
// the method has none.
func (s *ClientSecrets) carryOver(ctx context.Context, current, updated *storage.Client) (string, error) {
	method := updated.TokenEndpointAuthMethod
	switch {
	case method == "none" || method == "private_key_jwt" || len(current.SecretHash) == 0:
		return s.Issue(ctx, updated)
	case method != "client_secret_jwt":
		updated.SecretHash, updated.Metadata.SealedSecret = current.SecretHash, nil
		return "", nil
	case len(current.Metadata.SealedSecret) > 0:
		updated.SecretHash, updated.Metadata.SealedSecret = current.SecretHash, current.Metadata.SealedSecret
		return "", nil
	default:
		// Only a hash of the old secret is kept, and client_secret_jwt needs
		// the secret itself.
		return s.Issue(ctx, updated)
	}
}

// registrar holds what the registration endpoints need besides the store.
type registrar struct {
	mode RegistrationMode
	// initialTokenHash is the SHA-256 of Config.RegistrationToken, compared
	// in constant time whatever the length of the presented token.
	initialTokenHash [sha256.Size]byte
	secrets          *ClientSecrets
	// accessTokens hashes registration access tokens (RFC 7592), under a
	// key of their own.
	accessTokens *SecretHasher
}

func newRegistrar(cfg Config, secrets *ClientSecrets) (*registrar, error) {
	if err := CheckRegistrationSettings(cfg.Registration, cfg.RegistrationToken); err != nil {
		return nil, err
	}
	key, err := DeriveKey(cfg.SystemSecret, purposeRegistrationToken)
	if err != nil {
		return nil, err
	}
	mode := cfg.Registration
	if mode == "" {
		mode = RegistrationOff
	}
	return &registrar{
		mode:             mode,
		initialTokenHash: sha256.Sum256([]byte(cfg.RegistrationToken)),
		secrets:          secrets,
		accessTokens:     &SecretHasher{key: key},
	}, nil
}

func (r *registrar) enabled() bool {
	return r.mode != RegistrationOff
}

func (r *registrar) initialTokenValid(token string) bool {
	presented := sha256.Sum256([]byte(token))
	return token != "" && subtle.ConstantTimeCompare(presented[:], r.initialTokenHash[:]) == 1
}

// Audit actions of dynamic registration. The actor is the client itself.
const (
	auditClientRegistered = "client.registered"
	auditClientUpdated    = "client.updated"
	auditClientDeleted    = "client.deleted"
)

// registrationError is a rejected registration request that is not about
// one metadata value.
type registrationError struct {
	status            int
	code, description string
}

func (e *registrationError) Error() string { return e.code + ": " + e.description }

// clientInformation is the client information response of RFC 7591 §3.2.1
// and RFC 7592 §3.
type clientInformation struct {
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret,omitempty"`
	ClientIDIssuedAt int64  `json:"client_id_issued_at"`
	// ClientSecretExpiresAt is sent with every client_secret. Its value 0
	// means the secret does not expire.
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	ClientRegistration
}

// clientUpdateRequest is the body of an RFC 7592 §2.2 update: the complete
// new metadata, with the client's id and, optionally, its current secret.
type clientUpdateRequest struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	ClientRegistration
}

// registerClient is the client registration endpoint (RFC 7591 §3, OpenID
// Connect Dynamic Client Registration 1.0 §3). Registered clients always
// get the consent page and can use only registrationScopes.
func (p *Provider) registerClient(c *gin.Context) {
	ctx := c.Request.Context()
	if p.registration.mode == RegistrationToken {
		token := registrationBearer(c.Request)
		if !p.registration.initialTokenValid(token) {
			p.rejectRegistrationToken(c, token != "", "A valid initial access token is required to register a client.")
			return
		}
	}

	var request ClientRegistration
	if err := decodeRegistration(c, &request); err != nil {
		p.rejectRegistration(c, err)
		return
	}
	client, err := request.NewClient(registrationScopes)
	if err != nil {
		p.rejectRegistration(c, err)
		return
	}

	client.ID = uuid.NewString()
	client.Metadata.Dynamic = true
	secret, err := p.registration.secrets.Issue(ctx, client)
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}
	accessToken := randomToken(32)
	client.Metadata.RegistrationAccessTokenHash, _ = p.registration.accessTokens.Hash(ctx, []byte(accessToken))

	err = p.store.InTx(ctx, func(ctx context.Context) error {
		if err := p.store.CreateClient(ctx, client); err != nil {
			return err
		}
		return p.store.AppendAuditEvent(ctx, registrationAuditEvent(c, auditClientRegistered, client))
	})
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}
	p.logger.InfoContext(ctx, "client registered", "request_id", ctx.Value(requestIDKey{}),
		"client_id", client.ID, "token_endpoint_auth_method", client.TokenEndpointAuthMethod)
	p.writeClientInformation(c, http.StatusCreated, client, secret, accessToken)
}

// readClient is the client read request of RFC 7592 §2.1. The response
// carries neither the client secret nor the registration access token:
// Latchkey keeps only hashes of them.
func (p *Provider) readClient(c *gin.Context) {
	client := p.managedClient(c)
	if client == nil {
		return
	}
	p.writeClientInformation(c, http.StatusOK, client, "", "")
}

// updateClient is the client update request of RFC 7592 §2.2. The body
// replaces every metadata value: a member left out is removed or reset to
// its default. The response carries a client_secret only when the update
// issued a new one, because the new auth method needs a secret that
// Latchkey does not have.
func (p *Provider) updateClient(c *gin.Context) {
	ctx := c.Request.Context()
	current := p.managedClient(c)
	if current == nil {
		return
	}

	var request clientUpdateRequest
	if err := decodeRegistration(c, &request); err != nil {
		p.rejectRegistration(c, err)
		return
	}
	if request.ClientID != current.ID {
		p.rejectRegistration(c, &registrationError{http.StatusBadRequest, errInvalidClientMetadata,
			"client_id must be present and equal the id of the client being updated."})
		return
	}
	if request.ClientSecret != "" && !p.registration.secrets.matches(ctx, current, request.ClientSecret) {
		p.rejectRegistration(c, &registrationError{http.StatusBadRequest, errInvalidClientMetadata,
			"client_secret does not match the client's current secret: leave it out or send the current one."})
		return
	}
	updated, err := request.NewClient(registrationScopes)
	if err != nil {
		p.rejectRegistration(c, err)
		return
	}

	updated.ID = current.ID
	updated.CreatedAt = current.CreatedAt
	updated.Metadata.Dynamic = true
	updated.Metadata.RegistrationAccessTokenHash = current.Metadata.RegistrationAccessTokenHash
	secret, err := p.registration.secrets.carryOver(ctx, current, updated)
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}

	err = p.store.InTx(ctx, func(ctx context.Context) error {
		if err := p.store.UpdateClient(ctx, updated); err != nil {
			return err
		}
		return p.store.AppendAuditEvent(ctx, registrationAuditEvent(c, auditClientUpdated, updated))
	})
	if errors.Is(err, fosite.ErrNotFound) {
		p.rejectRegistrationToken(c, true, "The client no longer exists.")
		return
	}
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}
	p.logger.InfoContext(ctx, "client updated", "request_id", ctx.Value(requestIDKey{}), "client_id", updated.ID,
		"token_endpoint_auth_method", updated.TokenEndpointAuthMethod, "new_secret", secret != "")
	p.writeClientInformation(c, http.StatusOK, updated, secret, "")
}

// deleteClient is the client delete request of RFC 7592 §2.3. The client's
// consents and token records go with it, so its refresh tokens stop
// working at once and its access tokens fail introspection and userinfo.
func (p *Provider) deleteClient(c *gin.Context) {
	ctx := c.Request.Context()
	client := p.managedClient(c)
	if client == nil {
		return
	}

	err := p.store.InTx(ctx, func(ctx context.Context) error {
		if err := p.store.DeleteClient(ctx, client.ID); err != nil {
			return err
		}
		return p.store.AppendAuditEvent(ctx, registrationAuditEvent(c, auditClientDeleted, client))
	})
	if errors.Is(err, fosite.ErrNotFound) {
		p.rejectRegistrationToken(c, true, "The client no longer exists.")
		return
	}
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}
	p.logger.InfoContext(ctx, "client deleted", "request_id", ctx.Value(requestIDKey{}), "client_id", client.ID)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}

// managedClient loads the client the path names and checks the
// registration access token for it (RFC 7592 §2). When either fails it
// writes a 401 response and returns nil. An unknown client and a wrong
// token get the same response, as RFC 7592 §2.1 requires.
func (p *Provider) managedClient(c *gin.Context) *storage.Client {
	ctx := c.Request.Context()
	token := registrationBearer(c.Request)
	if token == "" {
		p.rejectRegistrationToken(c, false, "The registration access token is missing.")
		return nil
	}

	client, err := p.store.GetClientByID(ctx, c.Param("client_id"))
	if err != nil && !errors.Is(err, fosite.ErrNotFound) {
		p.writeOAuthError(c, err, "")
		return nil
	}
	presented, _ := p.registration.accessTokens.Hash(ctx, []byte(token))
	if client == nil || len(client.Metadata.RegistrationAccessTokenHash) == 0 ||
		!hmac.Equal(client.Metadata.RegistrationAccessTokenHash, presented) {
		p.rejectRegistrationToken(c, true, "The registration access token is not valid for this client.")
		return nil
	}
	return client
}

// registrationBearer returns the Bearer token of the Authorization header,
// or "".
func registrationBearer(r *http.Request) string {
	scheme, value, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(value)
}

// decodeRegistration reads a JSON request body into target.
func decodeRegistration(c *gin.Context, target any) error {
	mediaType, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return &registrationError{http.StatusBadRequest, errInvalidClientMetadata,
			"Send the client metadata as a JSON object with Content-Type application/json."}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &registrationError{http.StatusRequestEntityTooLarge, "invalid_request",
			fmt.Sprintf("The request body is larger than %d bytes.", maxBodyBytes)}
	}
	if err != nil {
		return &registrationError{http.StatusBadRequest, "invalid_request", "The request body could not be read."}
	}

	err = json.Unmarshal(body, target)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return &registrationError{http.StatusBadRequest, errInvalidClientMetadata,
			fmt.Sprintf("%s has the wrong JSON type: %s is expected.", typeErr.Field, typeErr.Type)}
	default:
		return &registrationError{http.StatusBadRequest, errInvalidClientMetadata,
			"The request body is not a JSON object of client metadata."}
	}
}

// rejectRegistration writes the 400 (or 413) error response of RFC 7591
// §3.2.2 for err, or, for any other error, the usual server error.
func (p *Provider) rejectRegistration(c *gin.Context, err error) {
	var metadataErr *InvalidMetadataError
	var requestErr *registrationError
	switch {
	case errors.As(err, &metadataErr):
		requestErr = &registrationError{http.StatusBadRequest, metadataErr.code(), metadataErr.Error()}
	case errors.As(err, &requestErr):
	default:
		p.writeOAuthError(c, err, "")
		return
	}
	p.logger.InfoContext(c.Request.Context(), "registration request rejected",
		"request_id", c.Request.Context().Value(requestIDKey{}), "path", c.Request.URL.Path,
		"error_code", requestErr.code, "error", requestErr.description)
	writeErrorJSON(c, requestErr.status, requestErr.code, requestErr.description)
}

// rejectRegistrationToken writes a 401 response with the RFC 6750 §3
// challenge, which names the invalid_token error only when a token was
// presented.
func (p *Provider) rejectRegistrationToken(c *gin.Context, presented bool, description string) {
	challenge := `Bearer realm="latchkey"`
	if presented {
		challenge += `, error="invalid_token"`
	}
	p.logger.InfoContext(c.Request.Context(), "registration request rejected",
		"request_id", c.Request.Context().Value(requestIDKey{}), "path", c.Request.URL.Path,
		"error_code", "invalid_token", "error", description)
	c.Header("WWW-Authenticate", challenge)
	writeErrorJSON(c, http.StatusUnauthorized, "invalid_token", description)
}

// writeClientInformation writes the client information response with the
// client's registered metadata. secret and accessToken are sent only when
// not empty, because both exist in clear only while the request that
// issued them runs.
func (p *Provider) writeClientInformation(c *gin.Context, status int, client *storage.Client, secret, accessToken string) {
	information := clientInformation{
		ClientID:                client.ID,
		ClientSecret:            secret,
		ClientIDIssuedAt:        client.CreatedAt.Unix(),
		RegistrationAccessToken: accessToken,
		RegistrationClientURI:   p.cfg.Issuer + "/oauth2/register/" + url.PathEscape(client.ID),
		ClientRegistration:      registrationOf(client),
	}
	if secret != "" {
		neverExpires := int64(0)
		information.ClientSecretExpiresAt = &neverExpires
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.JSON(status, information)
}

// registrationOf returns a stored client's metadata as registration
// responses show it.
func registrationOf(client *storage.Client) ClientRegistration {
	metadata := client.Metadata
	registration := ClientRegistration{
		RedirectURIs:                client.RedirectURIs,
		ResponseTypes:               client.ResponseTypes,
		GrantTypes:                  client.GrantTypes,
		ClientName:                  client.Name,
		Contacts:                    metadata.Contacts,
		LogoURI:                     metadata.LogoURI,
		ClientURI:                   metadata.ClientURI,
		PolicyURI:                   metadata.PolicyURI,
		TOSURI:                      metadata.TOSURI,
		Scope:                       strings.Join(client.Scopes, " "),
		JWKSURI:                     metadata.JWKSURI,
		JWKS:                        metadata.JWKS,
		SubjectType:                 "public",
		IDTokenSignedResponseAlg:    client.IDTokenSignedResponseAlg,
		UserinfoSignedResponseAlg:   metadata.UserinfoSignedResponseAlg,
		RequestObjectSigningAlg:     metadata.RequestObjectSigningAlg,
		TokenEndpointAuthMethod:     client.TokenEndpointAuthMethod,
		TokenEndpointAuthSigningAlg: metadata.TokenEndpointAuthSigningAlg,
		RequestURIs:                 metadata.RequestURIs,
		PostLogoutRedirectURIs:      client.PostLogoutRedirectURIs,
		BackchannelLogoutURI:        client.BackchannelLogoutURI,
		FrontchannelLogoutURI:       metadata.FrontchannelLogoutURI,
	}
	if client.BackchannelLogoutURI != "" {
		registration.BackchannelLogoutSessionRequired = &client.BackchannelLogoutSessionRequired
	}
	if metadata.FrontchannelLogoutURI != "" {
		registration.FrontchannelLogoutSessionRequired = &metadata.FrontchannelLogoutSessionRequired
	}
	return registration
}

// registrationAuditEvent describes a registration change without secrets.
func registrationAuditEvent(c *gin.Context, action string, client *storage.Client) *storage.AuditEvent {
	return newAuditEvent(c, storage.ActorClient, client.ID, client.ID, action, storage.OutcomeSuccess, map[string]any{
		"client_name":                client.Name,
		"redirect_uris":              client.RedirectURIs,
		"grant_types":                client.GrantTypes,
		"token_endpoint_auth_method": client.TokenEndpointAuthMethod,
	})
}

// registrationEndpoint is the registration_endpoint of the discovery
// document: empty when registration is off.
func (p *Provider) registrationEndpoint() string {
	if !p.registration.enabled() {
		return ""
	}
	return p.cfg.Issuer + "/oauth2/register"
}

// dnsHostPattern matches a DNS name of letters, digits, hyphens and dots, as
// hosts in registered URIs must be. Go's URL parser accepts far more, such
// as ';' and ',', which would end a Content-Security-Policy source list.
var dnsHostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// ValidURLHost reports whether host, a URL's host with an optional port, is
// a DNS name or an IP literal.
func ValidURLHost(host string) bool {
	name, port := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	if net.ParseIP(name) != nil {
		return true
	}
	return len(name) <= 253 && dnsHostPattern.MatchString(name)
}
