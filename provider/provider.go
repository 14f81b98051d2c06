package provider

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/logout"
	"github.com/latchkey/latchkey/mfa"
	"github.com/latchkey/latchkey/storage"
)

// Config contains the provider's settings. Zero durations take the defaults
// listed in DefaultConfig.
type Config struct {
	// Issuer is the issuer identifier: an https URL, or http on a loopback
	// host for local development.
	Issuer       string
	SystemSecret []byte

	AccessTokenLifetime       time.Duration
	RefreshTokenLifetime      time.Duration
	IDTokenLifetime           time.Duration
	AuthorizationCodeLifetime time.Duration
	LoginSessionLifetime      time.Duration
	LoginSessionIdleTimeout   time.Duration

	// AccessTokenAlgorithm signs access tokens: ES256 (default) or RS256.
	AccessTokenAlgorithm string
	// MFALockout is how long the MFA step stays locked after
	// MaxMFAFailures wrong codes.
	MFALockout time.Duration

	Logger *slog.Logger

	// SessionEnder ends login sessions on logout. When nil, New builds one
	// that sends no back-channel logout tokens.
	SessionEnder *logout.Ender

	// Registration selects who may register clients at /oauth2/register
	// (RFC 7591); the zero value is RegistrationOff.
	Registration RegistrationMode
	// AllowPrivateFetches lets the URLs clients register (jwks_uri,
	// request_uri) reach loopback and private addresses. Off in production,
	// so that clients cannot make Latchkey probe internal services; on in
	// development, where apps run on the same machine.
	AllowPrivateFetches bool

	// RegistrationToken is the initial access token that RegistrationToken
	// mode requires, at least MinRegistrationTokenLength characters.
	RegistrationToken string
}

// Defaults for the zero values of Config.
const (
	DefaultAccessTokenLifetime       = time.Hour
	DefaultRefreshTokenLifetime      = 30 * 24 * time.Hour
	DefaultIDTokenLifetime           = time.Hour
	DefaultAuthorizationCodeLifetime = 10 * time.Minute
	DefaultLoginSessionLifetime      = 24 * time.Hour
	DefaultLoginSessionIdleTimeout   = 2 * time.Hour
)

func (c *Config) applyDefaults() {
	defaults := []struct {
		value    *time.Duration
		fallback time.Duration
	}{
		{&c.AccessTokenLifetime, DefaultAccessTokenLifetime},
		{&c.RefreshTokenLifetime, DefaultRefreshTokenLifetime},
		{&c.IDTokenLifetime, DefaultIDTokenLifetime},
		{&c.AuthorizationCodeLifetime, DefaultAuthorizationCodeLifetime},
		{&c.LoginSessionLifetime, DefaultLoginSessionLifetime},
		{&c.LoginSessionIdleTimeout, DefaultLoginSessionIdleTimeout},
		{&c.MFALockout, DefaultMFALockout},
	}
	for _, d := range defaults {
		if *d.value <= 0 {
			*d.value = d.fallback
		}
	}
	if c.AccessTokenAlgorithm == "" {
		c.AccessTokenAlgorithm = AlgES256
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Issuer = strings.TrimSuffix(c.Issuer, "/")
}

// KeyOverlap is how long a retired signing key stays published: long enough
// for every token it signed to expire. It keeps signing for the new key's
// activation delay after it is retired, so that delay is added.
func (c *Config) KeyOverlap() time.Duration {
	c.applyDefaults()
	return max(c.AccessTokenLifetime, c.IDTokenLifetime) + DefaultKeyActivationDelay + time.Minute
}

// ValidateIssuer checks that issuer is an absolute https URL without query
// or fragment, or http on a loopback host.
func ValidateIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("issuer %q must not have a query or fragment", issuer)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("issuer %q uses http on a non-loopback host: use https", issuer)
	default:
		return fmt.Errorf("issuer %q must use https", issuer)
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Provider serves the authorization server's endpoints and pages.
type Provider struct {
	cfg    Config
	oauth2 fosite.OAuth2Provider
	fosite *fosite.Config
	// requestURIClient fetches request objects by reference.
	requestURIClient *http.Client
	store            Store
	sessions         SessionStore
	keys             *KeySet
	flows            *Sealer
	mfa              *mfa.Codec
	csrfKey          []byte
	pages            *template.Template
	logger           *slog.Logger
	passwords        *PasswordLimiter
	// registration serves the client registration endpoints.
	registration *registrar
	// clientAuth authenticates clients: with client assertions itself, and
	// otherwise through fosite.
	clientAuth *clientAuthenticator
	// secureCookies is false only for an http issuer on a loopback host.
	secureCookies bool
	now           func() time.Time
}

// New composes fosite with Latchkey's storage, strategies and keys. keys
// must be loaded and hold an active key for RS256, ES256 and the access
// token algorithm.
func New(cfg Config, store Store, sessions SessionStore, keys *KeySet) (*Provider, error) {
	cfg.applyDefaults()
	if err := ValidateIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.AccessTokenAlgorithm != AlgES256 && cfg.AccessTokenAlgorithm != AlgRS256 {
		return nil, fmt.Errorf("access token algorithm %q is not supported: use ES256 or RS256", cfg.AccessTokenAlgorithm)
	}
	for _, algorithm := range []string{AlgRS256, AlgES256} {
		if _, err := keys.activeKey(algorithm); err != nil {
			return nil, err
		}
	}

	globalSecret, err := DeriveKey(cfg.SystemSecret, purposeFositeHMAC)
	if err != nil {
		return nil, err
	}
	hasher, err := NewSecretHasher(cfg.SystemSecret)
	if err != nil {
		return nil, err
	}
	flowKey, err := DeriveKey(cfg.SystemSecret, purposeFlow)
	if err != nil {
		return nil, err
	}
	flows, err := NewSealer(flowKey)
	if err != nil {
		return nil, err
	}
	csrfKey, err := DeriveKey(cfg.SystemSecret, purposeCSRF)
	if err != nil {
		return nil, err
	}
	if cfg.SessionEnder == nil {
		cfg.SessionEnder = logout.NewEnder(sessions, store, nil, cfg.Logger)
	}
	mfaCodec, err := NewMFACodec(cfg.SystemSecret)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	clientSecrets, err := NewClientSecrets(cfg.SystemSecret)
	if err != nil {
		return nil, err
	}
	registration, err := newRegistrar(cfg, clientSecrets)
	if err != nil {
		return nil, err
	}
	clientAuth := newClientAuthenticator(cfg.Issuer, store, clientSecrets, cfg.Logger, cfg.AllowPrivateFetches)

	fositeConfig := &fosite.Config{
		AccessTokenLifespan:         cfg.AccessTokenLifetime,
		RefreshTokenLifespan:        cfg.RefreshTokenLifetime,
		IDTokenLifespan:             cfg.IDTokenLifetime,
		AuthorizeCodeLifespan:       cfg.AuthorizationCodeLifetime,
		GlobalSecret:                globalSecret,
		AccessTokenIssuer:           cfg.Issuer,
		IDTokenIssuer:               cfg.Issuer,
		TokenURL:                    cfg.Issuer + "/oauth2/token",
		JWTScopeClaimKey:            jwt.JWTScopeFieldString,
		RefreshTokenScopes:          []string{"offline_access"},
		ScopeStrategy:               fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:    audienceStrategy(cfg.Issuer),
		ClientSecretsHasher:         hasher,
		EnforcePKCEForPublicClients: true,
		// fosite can only allow or reject "plain" for every client, so Latchkey
		// decides per client in checkPKCEPolicy before fosite handles the request.
		EnablePKCEPlainChallengeMethod: true,
		MinParameterEntropy:            fosite.MinParameterEntropy,
		// Set here rather than left to fosite's lazy defaults, which write
		// the shared config on first use and race.
		JWKSFetcherStrategy: clientAuth.keys,
		// Latchkey fetches request_uri itself (expandRequestObject), so fosite
		// should never fetch anything. Should it, it gets the same client:
		// no redirects, a timeout, and no retries.
		HTTPClient: &retryablehttp.Client{
			HTTPClient: newRequestURIClient(cfg.AllowPrivateFetches),
			RetryMax:   0,
			CheckRetry: retryablehttp.DefaultRetryPolicy,
			Backoff:    retryablehttp.DefaultBackoff,
		},
		FormPostHTMLTemplate:       fosite.DefaultFormPostTemplate,
		SendDebugMessagesToClients: false,
		UseLegacyErrorFormat:       false,
	}

	accessSigner := &tokenSigner{keys: keys, algorithm: cfg.AccessTokenAlgorithm}
	idSigners := map[string]*openid.DefaultStrategy{
		AlgRS256: {Signer: &tokenSigner{keys: keys, algorithm: AlgRS256}, Config: fositeConfig},
		AlgES256: {Signer: &tokenSigner{keys: keys, algorithm: AlgES256}, Config: fositeConfig},
	}
	hmacStrategy := compose.NewOAuth2HMACStrategy(fositeConfig)
	coreStrategy := &oauth2.DefaultJWTStrategy{Signer: accessSigner, HMACSHAStrategy: hmacStrategy, Config: fositeConfig}
	idStrategy := &idTokenStrategy{byAlgorithm: idSigners}
	idHelper := &openid.IDTokenHandleHelper{IDTokenStrategy: idStrategy}
	validator := openid.NewOpenIDConnectRequestValidator(idSigners[AlgRS256].Signer, fositeConfig)

	// Handlers run in slice order: the code handler must issue the code and
	// the access token before PKCE and OpenID Connect read them.
	authorizeCode := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy:    coreStrategy,
		RefreshTokenStrategy:   coreStrategy,
		AuthorizeCodeStrategy:  coreStrategy,
		CoreStorage:            store,
		TokenRevocationStorage: store,
		Config:                 fositeConfig,
	}
	clientCredentials := &oauth2.ClientCredentialsGrantHandler{
		HandleHelper: &oauth2.HandleHelper{AccessTokenStrategy: coreStrategy, AccessTokenStorage: store, Config: fositeConfig},
		Config:       fositeConfig,
	}
	refresh := &oauth2.RefreshTokenGrantHandler{
		AccessTokenStrategy:    coreStrategy,
		RefreshTokenStrategy:   coreStrategy,
		TokenRevocationStorage: store,
		Config:                 fositeConfig,
	}
	openIDExplicit := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage:   store,
		IDTokenHandleHelper:           idHelper,
		OpenIDConnectRequestValidator: validator,
		Config:                        fositeConfig,
	}
	// The implicit access token handler is not registered itself: a bare
	// response_type=token (OAuth 2.0 implicit without an ID token) is not
	// offered, because RFC 9700 §2.1.2 advises against it. The OpenID
	// Connect implicit and hybrid flows use it to issue their access tokens.
	implicitTokens := &oauth2.AuthorizeImplicitGrantTypeHandler{
		AccessTokenStrategy: coreStrategy,
		AccessTokenStorage:  store,
		Config:              fositeConfig,
	}
	openIDImplicit := &openid.OpenIDConnectImplicitHandler{
		IDTokenHandleHelper:               idHelper,
		AuthorizeImplicitGrantTypeHandler: implicitTokens,
		OpenIDConnectRequestValidator:     validator,
		Config:                            fositeConfig,
	}
	openIDHybrid := &openid.OpenIDConnectHybridHandler{
		AuthorizeImplicitGrantTypeHandler: implicitTokens,
		AuthorizeExplicitGrantHandler:     authorizeCode,
		IDTokenHandleHelper:               idHelper,
		OpenIDConnectRequestValidator:     validator,
		OpenIDConnectRequestStorage:       store,
		Config:                            fositeConfig,
	}
	openIDRefresh := &openid.OpenIDConnectRefreshHandler{IDTokenHandleHelper: idHelper, Config: fositeConfig}
	pkceHandler := &pkce.Handler{AuthorizeCodeStrategy: coreStrategy, Storage: store, Config: fositeConfig}
	introspector := &oauth2.CoreValidator{CoreStrategy: coreStrategy, CoreStorage: store, Config: fositeConfig}
	revoker := &oauth2.TokenRevocationHandler{
		TokenRevocationStorage: store,
		AccessTokenStrategy:    coreStrategy,
		RefreshTokenStrategy:   coreStrategy,
	}

	fositeConfig.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{
		authorizeCode, openIDExplicit, openIDImplicit, openIDHybrid, pkceHandler,
	}
	fositeConfig.TokenEndpointHandlers = fosite.TokenEndpointHandlers{
		authorizeCode, clientCredentials, refresh, openIDExplicit, openIDRefresh, pkceHandler,
	}
	fositeConfig.TokenIntrospectionHandlers = fosite.TokenIntrospectionHandlers{introspector}
	fositeConfig.RevocationHandlers = fosite.RevocationHandlers{revoker}

	oauth2Provider := fosite.NewOAuth2Provider(store, fositeConfig)
	clientAuth.fallback = oauth2Provider.DefaultClientAuthenticationStrategy
	fositeConfig.ClientAuthenticationStrategy = clientAuth.authenticate

	return &Provider{
		cfg:              cfg,
		oauth2:           oauth2Provider,
		fosite:           fositeConfig,
		requestURIClient: newRequestURIClient(cfg.AllowPrivateFetches),
		store:            store,
		sessions:         sessions,
		keys:             keys,
		flows:            flows,
		mfa:              mfaCodec,
		csrfKey:          csrfKey,
		pages:            pages,
		logger:           cfg.Logger,
		passwords:        NewPasswordLimiter(),
		registration:     registration,
		clientAuth:       clientAuth,
		secureCookies:    strings.HasPrefix(cfg.Issuer, "https://"),
		now:              time.Now,
	}, nil
}

// audienceStrategy lets a client request, and keep on refresh, exactly its
// registered audiences plus the issuer, which grantAudience grants when a
// client asks for none.
func audienceStrategy(issuer string) fosite.AudienceMatchingStrategy {
	return func(registered []string, requested []string) error {
		others := make([]string, 0, len(requested))
		for _, audience := range requested {
			if audience != issuer {
				others = append(others, audience)
			}
		}
		return fosite.ExactAudienceMatchingStrategy(registered, others)
	}
}

// idTokenStrategy signs each ID token with the algorithm its client
// registered (id_token_signed_response_alg), RS256 by default.
type idTokenStrategy struct {
	byAlgorithm map[string]*openid.DefaultStrategy
}

func (s *idTokenStrategy) GenerateIDToken(ctx context.Context, lifespan time.Duration, requester fosite.Requester) (string, error) {
	algorithm := AlgRS256
	if client, ok := requester.GetClient().(*storage.Client); ok && client.IDTokenSignedResponseAlg != "" {
		algorithm = client.IDTokenSignedResponseAlg
	}
	strategy, ok := s.byAlgorithm[algorithm]
	if !ok {
		return "", fosite.ErrServerError.WithDebugf("client ID token algorithm %q is not supported", algorithm)
	}

	// A refreshed ID token is built from the claims stored with the refresh
	// token. Clear the expiry so the new token gets a fresh one.
	if session, ok := requester.GetSession().(openid.Session); ok && requester.GetRequestForm().Get("grant_type") == "refresh_token" {
		session.IDTokenClaims().ExpiresAt = time.Time{}
	}
	return strategy.GenerateIDToken(ctx, lifespan, requester)
}

// Handler returns the HTTP handler serving every route of the provider.
func (p *Provider) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.HandleMethodNotAllowed = true
	// Trust no proxy headers: the client address recorded with a login
	// session is the connection's, not a spoofable X-Forwarded-For.
	_ = engine.SetTrustedProxies(nil)
	engine.Use(p.recoverPanics, p.logRequests, limitRequestSize)

	engine.GET("/.well-known/openid-configuration", p.discovery)
	engine.GET("/.well-known/oauth-authorization-server", p.discovery)
	engine.GET("/.well-known/jwks.json", p.jwks)

	engine.GET("/oauth2/auth", p.authorize)
	engine.POST("/oauth2/auth", p.authorize)
	engine.GET("/login", p.loginPage)
	engine.POST("/login", p.login)
	engine.GET("/login/mfa", p.mfaPage)
	engine.POST("/login/mfa", p.mfaSubmit)
	engine.GET("/consent", p.consentPage)
	engine.POST("/consent", p.consent)

	engine.POST("/oauth2/token", p.token)
	engine.POST("/oauth2/introspect", p.introspect)
	engine.POST("/oauth2/revoke", p.revoke)
	engine.GET("/oauth2/logout", p.endSession)
	engine.POST("/oauth2/logout", p.endSession)
	engine.GET("/userinfo", p.userinfo)
	engine.POST("/userinfo", p.userinfo)
	if p.registration.enabled() {
		engine.POST("/oauth2/register", p.registerClient)
		engine.GET("/oauth2/register/:client_id", p.readClient)
		engine.PUT("/oauth2/register/:client_id", p.updateClient)
		engine.DELETE("/oauth2/register/:client_id", p.deleteClient)
	}

	engine.GET("/health/alive", p.alive)
	engine.GET("/health/ready", p.ready)

	engine.NoRoute(func(c *gin.Context) {
		c.JSON(http.StatusNotFound, gin.H{"error": "not_found", "error_description": "No such endpoint."})
	})
	engine.NoMethod(func(c *gin.Context) {
		c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "invalid_request", "error_description": "HTTP method not allowed on this endpoint."})
	})
	return engine
}

func (p *Provider) alive(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (p *Provider) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	body := gin.H{"status": "ok", "database": "ok"}
	status := http.StatusOK
	if err := p.store.Ready(ctx); err != nil {
		p.logger.ErrorContext(ctx, "readiness check failed", "dependency", "database", "error", err)
		body["database"], body["status"], status = "schema not current", "unavailable", http.StatusServiceUnavailable
		if errors.Is(err, storage.ErrUnavailable) {
			body["database"] = "unreachable"
		}
	}
	if pinger, ok := p.sessions.(interface{ Ping(context.Context) error }); ok {
		body["sessions"] = "ok"
		if err := pinger.Ping(ctx); err != nil {
			p.logger.ErrorContext(ctx, "readiness check failed", "dependency", "sessions", "error", err)
			body["sessions"], body["status"], status = "unreachable", "unavailable", http.StatusServiceUnavailable
		}
	}
	c.JSON(status, body)
}
