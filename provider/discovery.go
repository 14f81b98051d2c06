package provider

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// metadata is the provider's configuration document. It serves both OpenID
// Connect Discovery 1.0 §3 and RFC 8414, and lists only what works.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	ACRValuesSupported                         []string `json:"acr_values_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	RequireRequestURIRegistration              bool     `json:"require_request_uri_registration"`
	RequestObjectSigningAlgValuesSupported     []string `json:"request_object_signing_alg_values_supported"`
	UserinfoSigningAlgValuesSupported          []string `json:"userinfo_signing_alg_values_supported"`
	BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported                bool     `json:"frontchannel_logout_supported"`
	FrontchannelLogoutSessionSupported         bool     `json:"frontchannel_logout_session_supported"`
}

func (p *Provider) metadata() metadata {
	issuer := p.cfg.Issuer
	return metadata{
		Issuer:                issuer,
		AuthorizationEndpoint: issuer + "/oauth2/auth",
		TokenEndpoint:         issuer + "/oauth2/token",
		UserinfoEndpoint:      issuer + "/userinfo",
		JWKSURI:               issuer + "/.well-known/jwks.json",
		IntrospectionEndpoint: issuer + "/oauth2/introspect",
		RevocationEndpoint:    issuer + "/oauth2/revoke",
		EndSessionEndpoint:    issuer + "/oauth2/logout",
		RegistrationEndpoint:  p.registrationEndpoint(),
		ScopesSupported:       []string{"openid", "profile", "email", "address", "phone", "offline_access", ScopeRoles, "account", "admin"},
		ResponseTypesSupported: []string{
			"code", "id_token", "id_token token", "code id_token", "code token", "code id_token token",
		},
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		GrantTypesSupported:               []string{"authorization_code", "implicit", "refresh_token", "client_credentials"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{AlgRS256, AlgES256},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"},
		// Client assertions are checked by clientAuthenticator.
		TokenEndpointAuthSigningAlgValuesSupported: assertionAlgorithmNames(),
		// Introspection accepts HTTP Basic, which fosite checks, and client
		// assertions, which introspectWithAssertion checks.
		IntrospectionEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_jwt", "private_key_jwt"},
		RevocationEndpointAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"},
		// "plain" works only for clients registered to allow it, so it is not
		// advertised.
		CodeChallengeMethodsSupported: []string{"S256"},
		ACRValuesSupported:            []string{ACRPassword, ACRMFA, ACRPAPEMultiFactor},
		// RFC 9207: every authorization response carries iss.
		AuthorizationResponseIssParameterSupported: true,
		ClaimsSupported: []string{
			"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "c_hash", "sid", "amr", "acr",
			"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile",
			"picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
			"email", "email_verified", "address", "phone_number", "phone_number_verified", "roles",
		},
		PromptValuesSupported: []string{"none", "login", "consent", "select_account"},
		// OpenID Connect Core §5.5 and §6. A request_uri is fetched only when
		// registered for the client.
		ClaimsParameterSupported:               true,
		RequestParameterSupported:              true,
		RequestURIParameterSupported:           true,
		RequireRequestURIRegistration:          true,
		RequestObjectSigningAlgValuesSupported: requestObjectAlgorithms,
		UserinfoSigningAlgValuesSupported:      []string{AlgRS256, AlgES256},
		// OpenID Connect Back-Channel Logout 1.0 §2.1. Clients that register a
		// backchannel_logout_uri get logout tokens, and those tokens carry the
		// sid claim that ID tokens carry too.
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
		// OpenID Connect Front-Channel Logout 1.0: the end_session endpoint
		// makes the browser load every frontchannel_logout_uri of the ended
		// session, with iss and sid.
		FrontchannelLogoutSupported:        true,
		FrontchannelLogoutSessionSupported: true,
	}
}

func (p *Provider) discovery(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=3600")
	c.JSON(http.StatusOK, p.metadata())
}

func (p *Provider) jwks(c *gin.Context) {
	if err := p.keys.ReloadIfOlder(c.Request.Context(), JWKSMaxAge); err != nil {
		// The keys loaded before still verify every token signed so far.
		p.logger.ErrorContext(c.Request.Context(), "signing key reload failed", "error", err)
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", p.keys.JWKS())
}
