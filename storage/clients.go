package storage

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
)

// Client is a registered OAuth 2.0 client. It implements the client
// interfaces fosite reads during authorization and client authentication.
type Client struct {
	ID                     string
	Name                   string
	SecretHash             []byte // keyed hash of the secret. Nil for a public client
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	ResponseTypes          []string
	Scopes                 []string
	Audience               []string
	Public                 bool
	// FirstParty clients skip the consent page.
	FirstParty bool
	// AllowPlainPKCE lets a confidential client use the "plain" PKCE method.
	// Only safe where the authorization request cannot be observed.
	AllowPlainPKCE bool
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post or none.
	TokenEndpointAuthMethod string
	// IDTokenSignedResponseAlg is RS256 or ES256.
	IDTokenSignedResponseAlg string
	// BackchannelLogoutURI is the client's backchannel_logout_uri, the
	// absolute URL that logout tokens for this client are posted to (OpenID
	// Connect Back-Channel Logout 1.0 §2.2). Empty when none is registered.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired is backchannel_logout_session_required:
	// whether the client needs the sid claim in its logout tokens.
	BackchannelLogoutSessionRequired bool
	// Metadata holds the rest of the client's registered metadata
	// (OpenID Connect Dynamic Client Registration 1.0 §2).
	Metadata  ClientMetadata
	CreatedAt time.Time
}

// ClientMetadata is the client metadata kept as one JSON document, because
// only the provider reads it, always whole, by client id.
type ClientMetadata struct {
	// JWKS is the client's public key set as JSON, JWKSURI where to fetch it.
	// Either one may be set, not both.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// RequestURIs are the request_uri values the client may send.
	RequestURIs []string `json:"request_uris,omitempty"`
	// RequestObjectSigningAlg is the alg every request object must use;
	// empty accepts any algorithm Latchkey supports, "none" included only
	// when it is named here.
	RequestObjectSigningAlg     string `json:"request_object_signing_alg,omitempty"`
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
	// UserinfoSignedResponseAlg makes userinfo return a signed JWT.
	UserinfoSignedResponseAlg         string   `json:"userinfo_signed_response_alg,omitempty"`
	FrontchannelLogoutURI             string   `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool     `json:"frontchannel_logout_session_required,omitempty"`
	LogoURI                           string   `json:"logo_uri,omitempty"`
	ClientURI                         string   `json:"client_uri,omitempty"`
	PolicyURI                         string   `json:"policy_uri,omitempty"`
	TOSURI                            string   `json:"tos_uri,omitempty"`
	Contacts                          []string `json:"contacts,omitempty"`
	// SealedSecret is the client secret encrypted under a key derived from
	// the system secret, kept only for client_secret_jwt, whose HMAC needs
	// the secret itself.
	SealedSecret []byte `json:"sealed_secret,omitempty"`
	// RegistrationAccessTokenHash is the keyed hash of the RFC 7592
	// registration access token. Empty for clients created by the operator.
	RegistrationAccessTokenHash []byte `json:"registration_access_token_hash,omitempty"`
	// Dynamic marks a client created through dynamic registration.
	Dynamic bool `json:"dynamic,omitempty"`
}

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
	_ fosite.ResponseModeClient  = (*Client)(nil)
)

func (c *Client) GetID() string                   { return c.ID }
func (c *Client) GetHashedSecret() []byte         { return c.SecretHash }
func (c *Client) GetRedirectURIs() []string       { return c.RedirectURIs }
func (c *Client) GetGrantTypes() fosite.Arguments { return c.GrantTypes }
func (c *Client) GetScopes() fosite.Arguments     { return c.Scopes }
func (c *Client) IsPublic() bool                  { return c.Public }
func (c *Client) GetAudience() fosite.Arguments   { return c.Audience }

func (c *Client) GetResponseTypes() fosite.Arguments {
	if len(c.ResponseTypes) == 0 {
		return fosite.Arguments{"code"}
	}
	return c.ResponseTypes
}

func (c *Client) GetRequestURIs() []string { return c.Metadata.RequestURIs }

// GetJSONWebKeys returns the client's registered key set, or nil when it
// registered none or a jwks_uri.
func (c *Client) GetJSONWebKeys() *jose.JSONWebKeySet {
	if len(c.Metadata.JWKS) == 0 {
		return nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(c.Metadata.JWKS, &set); err != nil {
		return nil
	}
	return &set
}

func (c *Client) GetJSONWebKeysURI() string { return c.Metadata.JWKSURI }

func (c *Client) GetRequestObjectSigningAlgorithm() string {
	return c.Metadata.RequestObjectSigningAlg
}

// GetTokenEndpointAuthSigningAlgorithm is the alg of private_key_jwt and
// client_secret_jwt assertions: the registered one, or RS256 and HS256.
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.Metadata.TokenEndpointAuthSigningAlg != "" {
		return c.Metadata.TokenEndpointAuthSigningAlg
	}
	if c.TokenEndpointAuthMethod == "client_secret_jwt" {
		return "HS256"
	}
	return "RS256"
}

func (c *Client) GetTokenEndpointAuthMethod() string { return c.TokenEndpointAuthMethod }

// GetResponseModes lists the response modes this client may request: all
// of them. Which one the response type allows is checked by fosite.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{
		fosite.ResponseModeDefault, fosite.ResponseModeQuery,
		fosite.ResponseModeFragment, fosite.ResponseModeFormPost,
	}
}

type clientRow struct {
	ID                               string `gorm:"primaryKey"`
	Name                             string
	SecretHash                       []byte
	RedirectURIs                     string
	PostLogoutRedirectURIs           string
	GrantTypes                       string
	ResponseTypes                    string
	Scopes                           string
	Audience                         string
	Public                           bool
	FirstParty                       bool
	AllowPlainPKCE                   bool `gorm:"column:allow_plain_pkce"`
	TokenEndpointAuthMethod          string
	IDTokenSignedResponseAlg         string `gorm:"column:id_token_signed_response_alg"`
	BackchannelLogoutURI             string `gorm:"column:backchannel_logout_uri"`
	BackchannelLogoutSessionRequired bool   `gorm:"column:backchannel_logout_session_required"`
	Metadata                         string
	CreatedAt                        time.Time
}

func (clientRow) TableName() string { return "clients" }

func encodeList(values []string) string {
	if values == nil {
		values = []string{}
	}
	data, _ := json.Marshal(values)
	return string(data)
}

func decodeList(data string) []string {
	var values []string
	if data == "" {
		return values
	}
	_ = json.Unmarshal([]byte(data), &values)
	return values
}

func (r *clientRow) toClient() *Client {
	return &Client{
		ID:                               r.ID,
		Name:                             r.Name,
		SecretHash:                       r.SecretHash,
		RedirectURIs:                     decodeList(r.RedirectURIs),
		PostLogoutRedirectURIs:           decodeList(r.PostLogoutRedirectURIs),
		GrantTypes:                       decodeList(r.GrantTypes),
		ResponseTypes:                    decodeList(r.ResponseTypes),
		Scopes:                           strings.Fields(r.Scopes),
		Audience:                         decodeList(r.Audience),
		Public:                           r.Public,
		FirstParty:                       r.FirstParty,
		AllowPlainPKCE:                   r.AllowPlainPKCE,
		TokenEndpointAuthMethod:          r.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg:         r.IDTokenSignedResponseAlg,
		BackchannelLogoutURI:             r.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: r.BackchannelLogoutSessionRequired,
		Metadata:                         decodeMetadata(r.Metadata),
		CreatedAt:                        r.CreatedAt,
	}
}

func decodeMetadata(data string) ClientMetadata {
	var metadata ClientMetadata
	if data != "" {
		_ = json.Unmarshal([]byte(data), &metadata)
	}
	return metadata
}

func encodeMetadata(metadata ClientMetadata) string {
	data, _ := json.Marshal(metadata)
	return string(data)
}

func clientToRow(c *Client) *clientRow {
	return &clientRow{
		ID:                               c.ID,
		Name:                             c.Name,
		SecretHash:                       c.SecretHash,
		RedirectURIs:                     encodeList(c.RedirectURIs),
		PostLogoutRedirectURIs:           encodeList(c.PostLogoutRedirectURIs),
		GrantTypes:                       encodeList(c.GrantTypes),
		ResponseTypes:                    encodeList(c.ResponseTypes),
		Scopes:                           strings.Join(c.Scopes, " "),
		Audience:                         encodeList(c.Audience),
		Public:                           c.Public,
		FirstParty:                       c.FirstParty,
		AllowPlainPKCE:                   c.AllowPlainPKCE,
		TokenEndpointAuthMethod:          c.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg:         c.IDTokenSignedResponseAlg,
		BackchannelLogoutURI:             c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
		Metadata:                         encodeMetadata(c.Metadata),
		CreatedAt:                        c.CreatedAt,
	}
}

// CreateClient inserts a client. The caller fills every field, including
// the secret hash.
func (s *Store) CreateClient(ctx context.Context, c *Client) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Second)
	return translate(s.db(ctx).Create(clientToRow(c)).Error)
}

// GetClient loads a client by id. It returns fosite.ErrNotFound for an
// unknown id.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	client, err := s.GetClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return client, nil
}

// GetClientByID is GetClient returning the concrete type. Clients are
// cached for clientCacheTTL, because the token endpoint looks one up on
// every request, and a refresh or code exchange twice.
func (s *Store) GetClientByID(ctx context.Context, id string) (*Client, error) {
	if client, ok := s.clients.get(id); ok {
		return client, nil
	}
	var row clientRow
	if err := s.db(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	client := row.toClient()
	// A read inside a transaction may see rows that are rolled back later.
	if !inTransaction(ctx) {
		s.clients.put(client)
	}
	return client, nil
}

// clientCacheTTL bounds how long a client changed or deleted by another
// process (the CLI or another replica) can still be served from the cache.
// Changes made through the same Store take effect at once.
const clientCacheTTL = 10 * time.Second

// clientCache contains recently loaded clients. Entries are copies, so a caller
// that modifies its client cannot change what others get.
type clientCache struct {
	mu      sync.RWMutex
	entries map[string]cachedClient
}

type cachedClient struct {
	client    Client
	expiresAt time.Time
}

func newClientCache() *clientCache {
	return &clientCache{entries: map[string]cachedClient{}}
}

func (c *clientCache) get(id string) (*Client, bool) {
	c.mu.RLock()
	entry, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || !time.Now().Before(entry.expiresAt) {
		return nil, false
	}
	return entry.client.clone(), true
}

// clone returns a deep copy of c.
func (c *Client) clone() *Client {
	copied := *c
	copied.SecretHash = slices.Clone(c.SecretHash)
	copied.RedirectURIs = slices.Clone(c.RedirectURIs)
	copied.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	copied.GrantTypes = slices.Clone(c.GrantTypes)
	copied.ResponseTypes = slices.Clone(c.ResponseTypes)
	copied.Scopes = slices.Clone(c.Scopes)
	copied.Audience = slices.Clone(c.Audience)
	copied.Metadata.JWKS = slices.Clone(c.Metadata.JWKS)
	copied.Metadata.RequestURIs = slices.Clone(c.Metadata.RequestURIs)
	copied.Metadata.Contacts = slices.Clone(c.Metadata.Contacts)
	copied.Metadata.SealedSecret = slices.Clone(c.Metadata.SealedSecret)
	copied.Metadata.RegistrationAccessTokenHash = slices.Clone(c.Metadata.RegistrationAccessTokenHash)
	return &copied
}

// maxCachedClients caps the cache. Past it the cache is emptied rather than
// grown, so that lookups of many distinct ids cannot exhaust memory.
const maxCachedClients = 10000

func (c *clientCache) put(client *Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedClients {
		clear(c.entries)
	}
	c.entries[client.ID] = cachedClient{client: *client.clone(), expiresAt: time.Now().Add(clientCacheTTL)}
}

func (c *clientCache) remove(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// ListClients returns every client, oldest first.
func (s *Store) ListClients(ctx context.Context) ([]*Client, error) {
	var rows []clientRow
	if err := s.db(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	clients := make([]*Client, 0, len(rows))
	for i := range rows {
		clients = append(clients, rows[i].toClient())
	}
	return clients, nil
}

// DeleteClient removes a client. Its consents and token records go with it.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	s.clients.remove(id)
	result := s.db(ctx).Where("id = ?", id).Delete(&clientRow{})
	if result.Error != nil {
		return translate(result.Error)
	}
	if result.RowsAffected == 0 {
		return fosite.ErrNotFound
	}
	return nil
}

// ClientAssertionJWTValid returns fosite.ErrJTIKnown when jti was already
// used and has not expired.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var count int64
	err := s.db(ctx).Table("oauth2_client_assertion_jti").
		Where("jti = ? AND expires_at > ?", jti, time.Now().UTC()).Count(&count).Error
	if err != nil {
		return translate(err)
	}
	if count > 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT records jti until exp. A second insert of a live jti
// returns fosite.ErrJTIKnown.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	now := time.Now().UTC()
	db := s.db(ctx)
	if err := db.Exec("DELETE FROM oauth2_client_assertion_jti WHERE expires_at <= ?", now).Error; err != nil {
		return translate(err)
	}
	err := db.Exec("INSERT INTO oauth2_client_assertion_jti (jti, expires_at) VALUES (?, ?)", jti, exp.UTC()).Error
	if errors.Is(translate(err), ErrConflict) {
		return fosite.ErrJTIKnown
	}
	return translate(err)
}
