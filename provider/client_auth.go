package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/backchannel"
	"github.com/latchkey/latchkey/storage"
)

// jwtBearerAssertionType is the client_assertion_type of RFC 7523 §2.2.
const jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Algorithms of client assertions: HMAC with the client secret for
// client_secret_jwt, and the client's public keys for private_key_jwt
// (OpenID Connect Core §9).
var (
	secretAssertionAlgorithms = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}
	keyAssertionAlgorithms    = []jose.SignatureAlgorithm{
		jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512,
	}
)

// Limits on client assertions.
const (
	// assertionLeeway is the clock skew allowed on exp, nbf and iat.
	assertionLeeway = time.Minute
	// maxAssertionLifetime bounds how far in the future exp may be. A used
	// jti is kept until exp, so this also bounds how long it is kept.
	maxAssertionLifetime = time.Hour
	maxJTILength         = 256
)

// assertionStore is the storage that client authentication reads and writes.
type assertionStore interface {
	GetClientByID(ctx context.Context, id string) (*storage.Client, error)
	SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error
}

var _ assertionStore = (*storage.Store)(nil)

// clientAuthenticator is fosite's ClientAuthenticationStrategy. It verifies
// client assertions itself, for client_secret_jwt, which fosite v0.49.0
// does not support, and for private_key_jwt. There fosite accepts only the
// token endpoint as audience, skips keys without "use", and rejects
// replays and unreachable jwks_uri with non-standard errors. Requests
// without an assertion go to fosite's default strategy (fallback).
type clientAuthenticator struct {
	store   assertionStore
	secrets *ClientSecrets
	keys    *jwksFetcher
	issuer  string
	logger  *slog.Logger
	now     func() time.Time
	// fallback is fosite's DefaultClientAuthenticationStrategy. It is set
	// after the fosite provider that owns it is built.
	fallback fosite.ClientAuthenticationStrategy
}

func newClientAuthenticator(issuer string, store assertionStore, secrets *ClientSecrets, logger *slog.Logger, allowPrivate bool) *clientAuthenticator {
	return &clientAuthenticator{
		store:   store,
		secrets: secrets,
		keys:    newJWKSFetcher(allowPrivate),
		issuer:  issuer,
		logger:  logger,
		now:     time.Now,
	}
}

// authenticate authenticates the client of a token, introspection or
// revocation request. A request with a JWT bearer client assertion (RFC
// 7523 §2.2) is verified here; any other goes to fosite.
func (a *clientAuthenticator) authenticate(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Get("client_assertion_type") != jwtBearerAssertionType || form.Get("client_assertion") == "" {
		return a.fallback(ctx, r, form)
	}
	// RFC 6749 §2.3: a client uses one authentication method per request.
	if _, _, hasBasic := r.BasicAuth(); hasBasic || form.Get("client_secret") != "" {
		return nil, fosite.ErrInvalidRequest.WithHint("The request carries a client assertion and a client secret: use one authentication method.")
	}

	client, err := a.verifyAssertion(ctx, r, form)
	if err != nil {
		return nil, err
	}
	return client, nil
}

// verifyAssertion checks a client assertion as RFC 7523 §3 and OpenID
// Connect Core §9 require. It must be signed with the client's secret or
// one of its keys, and its iss and sub must be the client id. Its aud must
// name this server, its exp must be present and near, and its jti new. The
// jti is recorded only once the rest has passed, so a forged assertion
// cannot use up a real one's jti.
func (a *clientAuthenticator) verifyAssertion(ctx context.Context, r *http.Request, form url.Values) (*storage.Client, error) {
	assertion := form.Get("client_assertion")
	token, err := jwt.ParseSigned(assertion, slices.Concat(secretAssertionAlgorithms, keyAssertionAlgorithms))
	if err != nil {
		return nil, invalidAssertion("The client_assertion is not a JWT signed with a supported algorithm.", err)
	}
	var unverified jwt.Claims
	if err := token.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, invalidAssertion("The client_assertion claims are not valid JSON.", err)
	}
	clientID := form.Get("client_id")
	if clientID == "" {
		clientID = unverified.Subject
	}
	if clientID == "" {
		return nil, invalidAssertion("The client_assertion has no sub claim naming the client.", nil)
	}

	client, err := a.store.GetClientByID(ctx, clientID)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, invalidAssertion("The client is not registered.", err)
	}
	if err != nil {
		return nil, err
	}

	header := token.Headers[0]
	algorithm := jose.SignatureAlgorithm(header.Algorithm)
	if registered := client.Metadata.TokenEndpointAuthSigningAlg; registered != "" && registered != header.Algorithm {
		return nil, invalidAssertion(fmt.Sprintf("The client registered token_endpoint_auth_signing_alg %s, but the client_assertion uses %s.", registered, header.Algorithm), nil)
	}
	var claims jwt.Claims
	switch client.TokenEndpointAuthMethod {
	case "client_secret_jwt":
		err = a.verifyWithSecret(client, token, algorithm, &claims)
	case "private_key_jwt":
		err = a.verifyWithKeys(ctx, client, token, algorithm, header.KeyID, &claims)
	default:
		return nil, invalidAssertion(fmt.Sprintf("The client authenticates with %s, not with a client assertion.", client.TokenEndpointAuthMethod), nil)
	}
	if err != nil {
		return nil, err
	}

	expiry, err := a.checkClaims(r, client.ID, claims)
	if err != nil {
		return nil, err
	}
	err = a.store.SetClientAssertionJWT(ctx, assertionJTIKey(client.ID, claims.ID), expiry)
	if errors.Is(err, fosite.ErrJTIKnown) {
		return nil, invalidAssertion("The client_assertion was already used: sign a new one with a new jti.", err)
	}
	if err != nil {
		return nil, err
	}
	return client, nil
}

// verifyWithSecret checks an HMAC-signed assertion with the client secret.
func (a *clientAuthenticator) verifyWithSecret(client *storage.Client, token *jwt.JSONWebToken, algorithm jose.SignatureAlgorithm, claims *jwt.Claims) error {
	if !slices.Contains(secretAssertionAlgorithms, algorithm) {
		return invalidAssertion(fmt.Sprintf("A client_secret_jwt assertion is signed with HS256, HS384 or HS512, not %s.", algorithm), nil)
	}
	secret, err := a.secrets.unseal(client)
	if err != nil {
		// A client created for client_secret_jwt always has a sealed
		// secret: this one was changed outside Latchkey, or the system
		// secret changed.
		return fosite.ErrServerError.WithHint("The client's secret cannot be read.").WithWrap(err).WithDebug(err.Error())
	}
	if err := token.Claims(secret, claims); err != nil {
		return invalidAssertion("The client_assertion signature does not verify with the client secret.", err)
	}
	return nil
}

// verifyWithKeys checks a public-key assertion with the client's
// registered keys: those named by kid, or, without a kid or when no key
// has it, every key without a kid. A jwks_uri is fetched again once when
// no key fits or verifies, which is how a client's key rotation reaches
// Latchkey.
func (a *clientAuthenticator) verifyWithKeys(ctx context.Context, client *storage.Client, token *jwt.JSONWebToken, algorithm jose.SignatureAlgorithm, kid string, claims *jwt.Claims) error {
	if !slices.Contains(keyAssertionAlgorithms, algorithm) {
		return invalidAssertion(fmt.Sprintf("A private_key_jwt assertion is signed with a public-key algorithm such as RS256 or ES256, not %s.", algorithm), nil)
	}
	for _, refresh := range []bool{false, true} {
		set, err := a.clientKeys(ctx, client, refresh)
		if err != nil {
			return err
		}
		for _, key := range assertionKeys(set, kid, algorithm) {
			if token.Claims(key.Key, claims) == nil {
				return nil
			}
		}
		if client.Metadata.JWKSURI == "" {
			break
		}
	}
	if kid != "" {
		return invalidAssertion(fmt.Sprintf("No registered key of the client with kid %q verifies the client_assertion.", kid), nil)
	}
	return invalidAssertion("No registered key of the client verifies the client_assertion.", nil)
}

// clientKeys returns the client's registered keys, fetching its jwks_uri
// if it registered one.
func (a *clientAuthenticator) clientKeys(ctx context.Context, client *storage.Client, refresh bool) (*jose.JSONWebKeySet, error) {
	if client.Metadata.JWKSURI == "" {
		var set jose.JSONWebKeySet
		if len(client.Metadata.JWKS) > 0 {
			set.Keys = parseKeys(client.Metadata.JWKS)
		}
		return &set, nil
	}
	fetched, err := a.keys.fetch(ctx, client.Metadata.JWKSURI, refresh)
	if err != nil {
		a.logger.WarnContext(ctx, "fetch client jwks_uri failed", "client_id", client.ID, "jwks_uri", client.Metadata.JWKSURI, "error", err)
		return nil, invalidAssertion("The client's jwks_uri could not be fetched.", err)
	}
	return &jose.JSONWebKeySet{Keys: fetched.keys}, nil
}

// assertionKeys returns the keys of set that may verify an assertion with
// this kid and algorithm. An assertion without a kid may come from any key
// (OpenID Connect Core §10.1 requires kid only among several keys), and an
// unknown kid from a key registered without one.
func assertionKeys(set *jose.JSONWebKeySet, kid string, algorithm jose.SignatureAlgorithm) []jose.JSONWebKey {
	keys := set.Keys
	if kid != "" {
		if keys = set.Key(kid); len(keys) == 0 {
			keys = set.Key("")
		}
	}
	var fitting []jose.JSONWebKey
	for _, key := range keys {
		if (key.Use == "" || key.Use == "sig") && (key.Algorithm == "" || key.Algorithm == string(algorithm)) &&
			keyFitsAlgorithm(key.Key, algorithm) {
			fitting = append(fitting, key)
		}
	}
	return fitting
}

// keyFitsAlgorithm reports whether a public key can verify algorithm.
func keyFitsAlgorithm(key any, algorithm jose.SignatureAlgorithm) bool {
	switch key := key.(type) {
	case *rsa.PublicKey:
		return slices.Contains([]jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}, algorithm)
	case *ecdsa.PublicKey:
		curves := map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384(), jose.ES512: elliptic.P521()}
		return curves[algorithm] == key.Curve
	default:
		return false
	}
}

// checkClaims checks the verified claims and returns how long the jti must
// be remembered.
func (a *clientAuthenticator) checkClaims(r *http.Request, clientID string, claims jwt.Claims) (time.Time, error) {
	now := a.now()
	// The audience may be the token endpoint, as RFC 7523 §3 suggests, the
	// issuer, which RFC 7523 also allows and some clients send, or the
	// endpoint being called.
	audiences := jwt.Audience{a.issuer, a.issuer + "/oauth2/token", a.issuer + r.URL.Path}
	err := claims.ValidateWithLeeway(jwt.Expected{Issuer: clientID, Subject: clientID, AnyAudience: audiences, Time: now}, assertionLeeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer), errors.Is(err, jwt.ErrInvalidSubject):
		return time.Time{}, invalidAssertion("The client_assertion iss and sub must both be the client id.", err)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return time.Time{}, invalidAssertion("The client_assertion aud must name the token endpoint or the issuer.", err)
	case err != nil:
		return time.Time{}, invalidAssertion("The client_assertion is expired or not yet valid.", err)
	}

	if claims.Expiry == nil {
		return time.Time{}, invalidAssertion("The client_assertion has no exp claim.", nil)
	}
	expiry := claims.Expiry.Time()
	if expiry.After(now.Add(maxAssertionLifetime + assertionLeeway)) {
		return time.Time{}, invalidAssertion(fmt.Sprintf("The client_assertion exp is more than %s in the future.", maxAssertionLifetime), nil)
	}
	if claims.ID == "" || len(claims.ID) > maxJTILength {
		return time.Time{}, invalidAssertion(fmt.Sprintf("The client_assertion needs a jti claim of 1 to %d characters.", maxJTILength), nil)
	}
	// An assertion is accepted up to assertionLeeway after exp, so its jti
	// is kept that much longer.
	return expiry.Add(assertionLeeway), nil
}

// assertionJTIKey is the key a used jti is stored under: one per client,
// so that one client cannot use up the jti values of another.
func assertionJTIKey(clientID, jti string) string {
	sum := sha256.Sum256([]byte(clientID + "\x00" + jti))
	return hex.EncodeToString(sum[:])
}

// invalidAssertion is the invalid_client error of a rejected client
// assertion. The cause goes to the log only.
func invalidAssertion(hint string, cause error) error {
	err := fosite.ErrInvalidClient.WithHint(hint)
	if cause != nil {
		err = err.WithWrap(cause).WithDebug(cause.Error())
	}
	return err
}

// introspectWithAssertion is the introspection endpoint for a caller that
// authenticates with a client assertion, which fosite's introspection
// handler does not accept. It applies the same rule as introspect: a token
// is active only to its own client and to clients its audience names.
func (p *Provider) introspectWithAssertion(c *gin.Context) {
	ctx := c.Request.Context()
	caller, err := p.clientAuth.authenticate(ctx, c.Request, c.Request.PostForm)
	if err != nil {
		p.writeOAuthError(c, err, "")
		return
	}
	token := c.Request.PostForm.Get("token")
	if token == "" {
		p.writeOAuthError(c, fosite.ErrInvalidRequest.WithHint("The token parameter is required."), "")
		return
	}

	tokenUse, request, err := p.oauth2.IntrospectToken(ctx, token, fosite.TokenUse(c.Request.PostForm.Get("token_type_hint")), newSession())
	if errors.Is(err, storage.ErrUnavailable) {
		p.writeOAuthError(c, err, "")
		return
	}
	if err != nil || (request.GetClient().GetID() != caller.GetID() && !request.GetGrantedAudience().Has(caller.GetID())) {
		writeIntrospection(c, map[string]any{"active": false})
		return
	}
	response := &fosite.IntrospectionResponse{Active: true, AccessRequester: request, TokenUse: tokenUse}
	writeIntrospection(c, introspectionBody(response))
}

// JWKS fetching limits.
const (
	jwksFetchTimeout = 5 * time.Second
	maxJWKSBytes     = 64 << 10
	// jwksCacheTTL is how long a fetched key set is used before it is
	// fetched again. A rotation shows up sooner: an assertion that no
	// cached key verifies makes the set be fetched again.
	jwksCacheTTL = 10 * time.Minute
	// jwksMinRefetchInterval bounds how often one jwks_uri is fetched,
	// whatever the assertions presented for it, and how long a failed
	// fetch is remembered.
	jwksMinRefetchInterval = time.Second
	maxCachedKeySets       = 1000
)

// jwksFetcher fetches and caches the key sets of clients' jwks_uri. A URL
// is fetched only over https, or http on a loopback host, within
// jwksFetchTimeout, without redirects and up to maxJWKSBytes. It also
// serves fosite, which verifies request objects with the same keys.
//
// Unless Config.AllowPrivateFetches is set, internal addresses are refused
// at dial time (publicOnly), so a client that registers itself cannot make
// Latchkey probe internal services.
type jwksFetcher struct {
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

// jwksEntry is one fetch of a key set. done is closed when it finished;
// the other fields are written before that and only read after.
type jwksEntry struct {
	done      chan struct{}
	body      []byte
	keys      []jose.JSONWebKey
	err       error
	fetchedAt time.Time
}

var _ fosite.JWKSFetcherStrategy = (*jwksFetcher)(nil)

func newJWKSFetcher(allowPrivate bool) *jwksFetcher {
	return &jwksFetcher{
		client: &http.Client{
			Timeout:   jwksFetchTimeout,
			Transport: outboundTransport(jwksFetchTimeout, allowPrivate),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("jwks_uri redirects are not followed")
			},
		},
		now:     time.Now,
		entries: map[string]*jwksEntry{},
	}
}

// fetch returns the key set at uri from the cache, or fetches it when it is
// not cached, older than jwksCacheTTL, or refresh is set and it is older
// than jwksMinRefetchInterval. Concurrent callers share one fetch.
func (f *jwksFetcher) fetch(ctx context.Context, uri string, refresh bool) (*jwksEntry, error) {
	f.mu.Lock()
	entry := f.entries[uri]
	if entry != nil {
		select {
		case <-entry.done:
			age := f.now().Sub(entry.fetchedAt)
			reusable := age < jwksMinRefetchInterval || (entry.err == nil && age < jwksCacheTTL && !refresh)
			if reusable {
				f.mu.Unlock()
				return entry, entry.err
			}
		default:
			f.mu.Unlock()
			select {
			case <-entry.done:
				return entry, entry.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	if len(f.entries) >= maxCachedKeySets {
		f.evictFinished()
	}
	entry = &jwksEntry{done: make(chan struct{})}
	f.entries[uri] = entry
	f.mu.Unlock()

	// The fetch serves every caller waiting for it, so one caller giving up
	// does not cancel it.
	fetchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	entry.body, entry.err = f.download(fetchCtx, uri)
	if entry.err == nil {
		entry.keys = parseKeys(entry.body)
		if len(entry.keys) == 0 {
			entry.err = errors.New("the key set contains no usable keys")
		}
	}
	entry.fetchedAt = f.now()
	close(entry.done)
	return entry, entry.err
}

// evictFinished empties the cache of finished fetches. The caller holds mu.
func (f *jwksFetcher) evictFinished() {
	for uri, entry := range f.entries {
		select {
		case <-entry.done:
			delete(f.entries, uri)
		default:
		}
	}
}

func (f *jwksFetcher) download(ctx context.Context, uri string) ([]byte, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || !(u.Scheme == "https" || (u.Scheme == "http" && backchannel.IsLoopbackHost(u.Hostname()))) {
		return nil, fmt.Errorf("jwks_uri %q is not an https URL, nor an http URL on a loopback host", uri)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks_uri returned status %d, expected 200", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("the key set is larger than %d bytes", maxJWKSBytes)
	}
	return body, nil
}

// Resolve implements fosite.JWKSFetcherStrategy, which fosite uses for the
// keys that verify request objects.
func (f *jwksFetcher) Resolve(ctx context.Context, location string, ignoreCache bool) (*josev3.JSONWebKeySet, error) {
	entry, err := f.fetch(ctx, location, ignoreCache)
	if err != nil {
		return nil, fosite.ErrInvalidRequest.WithHint("The client's jwks_uri could not be fetched.").WithWrap(err).WithDebug(err.Error())
	}
	var set josev3.JSONWebKeySet
	for _, raw := range splitKeys(entry.body) {
		var key josev3.JSONWebKey
		if key.UnmarshalJSON(raw) == nil {
			set.Keys = append(set.Keys, key)
		}
	}
	return &set, nil
}

// parseKeys returns the public keys of a JSON Web Key Set that go-jose can
// parse. Others are skipped, as RFC 7517 §5 requires for unknown key types.
func parseKeys(body []byte) []jose.JSONWebKey {
	var keys []jose.JSONWebKey
	for _, raw := range splitKeys(body) {
		var key jose.JSONWebKey
		if key.UnmarshalJSON(raw) == nil && key.IsPublic() {
			keys = append(keys, key)
		}
	}
	return keys
}

func splitKeys(body []byte) []json.RawMessage {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(body, &set) != nil {
		return nil
	}
	return set.Keys
}

// assertionAlgorithmNames lists every client assertion algorithm, for the
// discovery document's token_endpoint_auth_signing_alg_values_supported.
func assertionAlgorithmNames() []string {
	var names []string
	for _, algorithm := range slices.Concat(keyAssertionAlgorithms, secretAssertionAlgorithms) {
		names = append(names, string(algorithm))
	}
	return names
}
