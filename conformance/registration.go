package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// client is a client the module uses: registered by the module through
// dynamic registration, or one of the static clients.
type client struct {
	ID     string
	Secret string
	// AuthMethod is the token_endpoint_auth_method.
	AuthMethod   string
	RedirectURIs []string
	// Key signs private_key_jwt assertions and request objects; KeyID is
	// the kid of its JWK, empty by default as in the official suite.
	Key   *rsa.PrivateKey
	KeyID string
	// IDTokenAlg and UserinfoAlg are the registered
	// id_token_signed_response_alg and userinfo_signed_response_alg.
	IDTokenAlg  string
	UserinfoAlg string
	// Scope is the scope the client requests, "openid" unless a module changes it.
	Scope string
	// RegistrationURI and RegistrationToken manage a dynamic client
	// (RFC 7592); both are empty for static clients.
	RegistrationURI   string
	RegistrationToken string
	Dynamic           bool
	// Metadata is the registration response.
	Metadata map[string]any
}

func (c *client) redirectURI() string {
	if len(c.RedirectURIs) == 0 {
		return ""
	}
	return c.RedirectURIs[0]
}

var (
	checkRegistrationContentType = defineCheck("EnsureContentTypeJson",
		"the response's Content-Type is application/json")
	checkRegistrationStatus = defineCheck("EnsureHttpStatusCodeIs201",
		"dynamic registration answers 201 Created (RFC 7591 §3.2.1)")
	checkRegistrationNoError = defineCheck("CheckNoErrorFromDynamicRegistrationEndpoint",
		"the registration response has no error member")
	checkRegistrationClientID = defineCheck("ExtractDynamicRegistrationResponse",
		"the registration response is a JSON object with a client_id")
	checkRegistrationManagement = defineCheck("VerifyClientManagementCredentials",
		"registration_client_uri (https) and registration_access_token (non-empty) come both or neither")
	checkRegistrationSecretExpiry = defineCheck("VerifyDynamicRegistrationResponseClientCredentials",
		"a client_secret comes with client_secret_expires_at")
	checkUnregister = defineCheck("UnregisterDynamicallyRegisteredClient",
		"DELETE on registration_client_uri answers 204 No Content (RFC 7592 §2.3)")
)

// clientOptions describe the client a module needs.
type clientOptions struct {
	// static names the static client to use without dynamic registration:
	// "client", "client2" or "client_secret_post".
	static string
	// authMethod defaults to the variant's client authentication.
	authMethod string
	// refresh adds the refresh_token grant.
	refresh bool
	// redirectURIs default to the module's /callback.
	redirectURIs []string
	// metadata adds or replaces members of the registration request.
	metadata map[string]any
	keyID    string
	// jwksURI registers the key by reference, served by the callback
	// server, instead of by value.
	jwksURI bool
}

// newClient registers a client by dynamic registration (OpenID Connect
// Dynamic Client Registration 1.0 §3), or returns a static one.
func (m *moduleRun) newClient(options clientOptions) *client {
	if options.authMethod == "" {
		options.authMethod = m.variant.ClientAuth
	}
	if m.h.static != nil {
		return m.staticClient(options)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	c := &client{AuthMethod: options.authMethod, Key: key, KeyID: options.keyID, Scope: "openid", Dynamic: true}
	body := m.registrationRequest(c, options)
	result := m.postRegistration(body)
	metadata := checkRegistrationResponse(m, result)
	m.fillClient(c, metadata, body)
	return c
}

func (m *moduleRun) staticClient(options clientOptions) *client {
	name := options.static
	if name == "" {
		name = "client"
	}
	static := m.h.static.Client
	switch name {
	case "client2":
		static = m.h.static.Client2
	case "client_secret_post":
		static = m.h.static.ClientSecretPost
	}
	uris := options.redirectURIs
	if len(uris) == 0 {
		uris = []string{m.base + "/callback"}
	}
	return &client{ID: static.ClientID, Secret: static.ClientSecret, AuthMethod: options.authMethod, RedirectURIs: uris, Scope: "openid"}
}

// registrationRequest builds the registration body the official suite
// sends, with the module's changes.
func (m *moduleRun) registrationRequest(c *client, options clientOptions) map[string]any {
	responseType := m.variant.ResponseType
	var grants []string
	if hasWord(responseType, "code") {
		grants = append(grants, "authorization_code")
	}
	if hasWord(responseType, "id_token") || hasWord(responseType, "token") {
		grants = append(grants, "implicit")
	}
	if options.refresh {
		grants = append(grants, "refresh_token")
	}
	redirectURIs := options.redirectURIs
	if len(redirectURIs) == 0 {
		redirectURIs = []string{m.base + "/callback"}
	}
	body := map[string]any{
		"client_name":                "latchkey conformance " + m.spec.Name + " " + m.id,
		"grant_types":                grants,
		"token_endpoint_auth_method": options.authMethod,
		"response_types":             []string{responseType},
		"redirect_uris":              redirectURIs,
		"contacts":                   []string{"conformance@example.org"},
	}
	jwk := jose.JSONWebKey{Key: c.Key.Public(), KeyID: c.KeyID, Use: "sig", Algorithm: "RS256"}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}}
	if options.jwksURI {
		data, _ := json.Marshal(set)
		m.inbox.setJWKS(data)
		body["jwks_uri"] = m.base + "/jwks"
	} else {
		body["jwks"] = set
	}
	for name, value := range options.metadata {
		if value == nil {
			delete(body, name)
		} else {
			body[name] = value
		}
	}
	return body
}

// postRegistration sends a registration request (RFC 7591 §3.1).
func (m *moduleRun) postRegistration(body map[string]any) *httpResult {
	endpoint, _ := m.config.Raw["registration_endpoint"].(string)
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(m.ctx, http.MethodPost, endpoint, bytes.NewReader(data))
	if err != nil {
		return &httpResult{Method: http.MethodPost, URL: endpoint, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if token := m.h.opts.RegistrationToken; token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return m.h.send(req)
}

// checkRegistrationResponse makes the checks of a successful registration
// and returns the response's members.
func checkRegistrationResponse(r recorder, result *httpResult) map[string]any {
	if result.Err != nil {
		report(r, checkRegistrationClientID, Fatal, "POST %s failed: %v", result.URL, result.Err)
		return nil
	}
	if mediaType(result.Header) != "application/json" {
		report(r, checkRegistrationContentType, Failure, "the registration response has Content-Type %q, expected application/json", result.Header.Get("Content-Type"))
	}
	if result.Status != http.StatusCreated {
		report(r, checkRegistrationStatus, Failure, "registration responded with status %d, expected 201: %s", result.Status, describeBody(result.Header, result.Body))
	}
	var metadata map[string]any
	_ = json.Unmarshal(result.Body, &metadata)
	if errorCode, present := metadata["error"]; present {
		report(r, checkRegistrationNoError, Failure, "registration returned error %s: %s", compactJSON(errorCode), compactJSON(metadata["error_description"]))
	}
	if id, _ := metadata["client_id"].(string); id == "" {
		report(r, checkRegistrationClientID, Fatal, "the registration response has no client_id: %s", describeBody(result.Header, result.Body))
		return nil
	}

	uri, hasURI := metadata["registration_client_uri"]
	token, hasToken := metadata["registration_access_token"]
	switch {
	case hasURI != hasToken:
		report(r, checkRegistrationManagement, Failure, "registration_client_uri and registration_access_token must come together")
	case hasURI:
		if s, _ := uri.(string); !isHTTPSURL(s) {
			report(r, checkRegistrationManagement, Failure, "registration_client_uri %s is not an https URL", compactJSON(uri))
		}
		if s, _ := token.(string); s == "" {
			report(r, checkRegistrationManagement, Failure, "registration_access_token is empty")
		}
	}
	if _, hasSecret := metadata["client_secret"]; hasSecret {
		if _, hasExpiry := metadata["client_secret_expires_at"]; !hasExpiry {
			report(r, checkRegistrationSecretExpiry, Failure, "client_secret is returned without client_secret_expires_at")
		}
	}
	return metadata
}

func (m *moduleRun) fillClient(c *client, metadata map[string]any, request map[string]any) {
	c.Metadata = metadata
	c.ID, _ = metadata["client_id"].(string)
	c.Secret, _ = metadata["client_secret"].(string)
	c.RegistrationURI, _ = metadata["registration_client_uri"].(string)
	c.RegistrationToken, _ = metadata["registration_access_token"].(string)
	c.IDTokenAlg, _ = request["id_token_signed_response_alg"].(string)
	c.UserinfoAlg, _ = request["userinfo_signed_response_alg"].(string)
	switch uris := request["redirect_uris"].(type) {
	case []string:
		c.RedirectURIs = slices.Clone(uris)
	}
	m.clients = append(m.clients, c)
}

// unregister deletes the module's dynamic clients (RFC 7592 §2.3). It runs
// after the module ends, even after a fatal finding.
func (m *moduleRun) unregister() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(m.ctx), 30*time.Second)
	defer cancel()
	for _, c := range m.clients {
		if c.RegistrationURI == "" || c.RegistrationToken == "" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.RegistrationURI, nil)
		if err != nil {
			report(m, checkUnregister, Warning, "invalid registration_client_uri: %v", err)
			continue
		}
		req.Header.Set("Authorization", "Bearer "+c.RegistrationToken)
		result := m.h.send(req)
		switch {
		case result.Err != nil:
			report(m, checkUnregister, Warning, "DELETE of client %s failed: %v", c.ID, result.Err)
		case result.Status != http.StatusNoContent:
			report(m, checkUnregister, Warning, "DELETE of client %s responded with status %d, expected 204", c.ID, result.Status)
		}
	}
}

func isHTTPSURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != ""
}
