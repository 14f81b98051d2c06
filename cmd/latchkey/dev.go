package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// Demo data created on the first start with --dev.
const (
	demoClientName  = "Demo app"
	demoRedirectURI = "http://127.0.0.1:8080/callback"
	demoUsername    = "demo"
)

// bootstrapDev creates a demo client and a demo user on a database that has
// no clients or users yet, and prints their credentials once.
func (a *app) bootstrapDev(ctx context.Context, store *storage.Store) error {
	clients, err := store.ListClients(ctx)
	if err != nil {
		return err
	}
	if len(clients) > 0 {
		a.logger.Info("development data already exists; its secrets were printed on the first start, delete the data folder to start over",
			"data_dir", a.cfg.DataDir)
		return nil
	}
	if _, err := store.GetUserByUsername(ctx, demoUsername); err == nil {
		return nil
	}

	hasher, err := provider.NewSecretHasher([]byte(a.cfg.SystemSecret))
	if err != nil {
		return err
	}
	secret := provider.GenerateClientSecret()
	hash, _ := hasher.Hash(ctx, []byte(secret))
	client := &storage.Client{
		ID:                       uuid.NewString(),
		Name:                     demoClientName,
		SecretHash:               hash,
		RedirectURIs:             []string{demoRedirectURI},
		PostLogoutRedirectURIs:   []string{"http://127.0.0.1:8080/"},
		GrantTypes:               []string{"authorization_code", "refresh_token", "client_credentials"},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"openid", "profile", "email", "phone", "roles", "offline_access", "account", "admin"},
		TokenEndpointAuthMethod:  "client_secret_basic",
		IDTokenSignedResponseAlg: provider.AlgRS256,
	}
	if err := store.CreateClient(ctx, client); err != nil {
		return fmt.Errorf("create demo client: %w", err)
	}

	password := randomPassword()
	user := &storage.User{
		ID:            uuid.NewString(),
		Username:      demoUsername,
		Email:         "demo@example.com",
		EmailVerified: true,
		PasswordHash:  provider.HashPassword(password),
		Name:          "Demo User",
		GivenName:     "Demo",
		FamilyName:    "User",
	}
	if err := store.CreateUser(ctx, user); err != nil {
		return fmt.Errorf("create demo user: %w", err)
	}
	// The demo user administers the demo installation through the user API.
	admin, err := store.GetRole(ctx, storage.RoleAdmin)
	if err != nil {
		return fmt.Errorf("find the admin role: %w", err)
	}
	if err := store.AssignRole(ctx, user.ID, admin.ID); err != nil {
		return fmt.Errorf("make the demo user an administrator: %w", err)
	}

	verifier := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	challenge := sha256.Sum256([]byte(verifier))
	query := url.Values{
		"response_type":         {"code"},
		"client_id":             {client.ID},
		"redirect_uri":          {demoRedirectURI},
		"scope":                 {"openid profile email phone roles offline_access account admin"},
		"state":                 {base64.RawURLEncoding.EncodeToString(randomBytes(12))},
		"nonce":                 {base64.RawURLEncoding.EncodeToString(randomBytes(12))},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}

	fmt.Fprintf(os.Stdout, `
Latchkey development setup (printed once; the secrets are not stored in readable form)

  demo client   client_id:     %s
                client_secret: %s
                redirect_uri:  %s
  demo user     username:      %s  (an administrator)
                password:      %s

Open this URL in a browser and sign in as the demo user:

  %s/oauth2/auth?%s

The browser then lands on %s?code=...; exchange the code with:

  curl -s -u '%s:%s' -d grant_type=authorization_code \
    -d redirect_uri=%s -d code_verifier=%s -d code=CODE \
    %s/oauth2/token

`, client.ID, secret, demoRedirectURI, demoUsername, password,
		a.cfg.Issuer, query.Encode(), demoRedirectURI,
		client.ID, secret, demoRedirectURI, verifier, a.cfg.Issuer)
	return nil
}

func randomBytes(n int) []byte {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return buf
}

// randomPassword returns a password of 26 base32 characters (130 bits).
func randomPassword() string {
	return rand.Text()
}
