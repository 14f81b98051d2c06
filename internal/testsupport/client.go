package testsupport

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// OAuthClient is a registered confidential client of the provider at
// Issuer, with CallbackURL as its redirect URI and client_secret_basic
// authentication.
type OAuthClient struct {
	Issuer string
	ID     string
	Name   string
	Secret string
}

// OAuthConfig returns the client's golang.org/x/oauth2 configuration for
// scopes.
func (c OAuthClient) OAuthConfig(scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   c.Issuer + "/oauth2/auth",
			TokenURL:  c.Issuer + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: CallbackURL,
		Scopes:      scopes,
	}
}

// AuthorizationURL returns an authorization request URL of the client with
// PKCE S256 and a random nonce, its random state and its code verifier.
func (c OAuthClient) AuthorizationURL(scopes []string, options ...oauth2.AuthCodeOption) (authURL, state, verifier string) {
	verifier = oauth2.GenerateVerifier()
	state = "state-" + rand.Text()
	options = append(options, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-"+rand.Text()))
	return c.OAuthConfig(scopes).AuthCodeURL(state, options...), state, verifier
}

// SignIn runs the authorization code flow with PKCE in b, submits the login
// form if the provider shows it, and exchanges the code.
func (c OAuthClient) SignIn(t testing.TB, b *Browser, username, password string, scopes []string) *oauth2.Token {
	t.Helper()
	authURL, state, verifier := c.AuthorizationURL(scopes)
	next := b.Get(authURL)
	if next.URL.Path == "/login" {
		next = b.Login(c.Issuer, next, username, password)
	}
	params := CallbackParams(t, next)
	if params.Get("error") != "" {
		t.Fatalf("authorization failed for %s: %s: %s", username, params.Get("error"), params.Get("error_description"))
	}
	return c.ExchangeCode(t, params, state, verifier)
}

// ExchangeCode checks that params, the query of the redirect to the
// callback, carry no error and the expected state, and exchanges their
// code with the PKCE verifier.
func (c OAuthClient) ExchangeCode(t testing.TB, params url.Values, state, verifier string) *oauth2.Token {
	t.Helper()
	if params.Get("error") != "" {
		t.Fatalf("authorization failed: %s: %s", params.Get("error"), params.Get("error_description"))
	}
	if params.Get("state") != state {
		t.Fatalf("callback state = %q, expected %q", params.Get("state"), state)
	}

	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: 30 * time.Second})
	// x/oauth2 sends no scope in a code exchange, so the configuration
	// needs none.
	token, err := c.OAuthConfig(nil).Exchange(ctx, params.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange the code: %v", err)
	}
	return token
}

// Refresh exchanges a refresh token of the client and returns the status
// and the decoded JSON body.
func (c OAuthClient) Refresh(t testing.TB, refreshToken string) (int, map[string]any) {
	t.Helper()
	return c.TokenRequest(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}})
}

// ClientCredentialsToken returns an access token of the client acting for
// itself, with scope.
func (c OAuthClient) ClientCredentialsToken(t testing.TB, scope string) string {
	t.Helper()
	status, body := c.TokenRequest(t, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	if status != http.StatusOK {
		t.Fatalf("client_credentials grant: status %d, expected 200: %v", status, body)
	}
	token, _ := body["access_token"].(string)
	if token == "" {
		t.Fatalf("client_credentials response has no access_token: %v", body)
	}
	return token
}

// TokenRequest posts form to the token endpoint with the client's
// credentials and returns the status and the decoded JSON body.
func (c OAuthClient) TokenRequest(t testing.TB, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.Issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /oauth2/token: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("POST /oauth2/token: status %d with a body that is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

// CreateClient generates a client secret, stores its hash, made with the
// hasher the provider derives from systemSecret, in client.SecretHash,
// creates client in store, and returns the secret.
func CreateClient(t testing.TB, store *storage.Store, systemSecret []byte, client *storage.Client) string {
	t.Helper()
	ctx := context.Background()
	hasher, err := provider.NewSecretHasher(systemSecret)
	if err != nil {
		t.Fatal(err)
	}
	secret := provider.GenerateClientSecret()
	client.SecretHash, err = hasher.Hash(ctx, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, client); err != nil {
		t.Fatalf("create client %s: %v", client.Name, err)
	}
	return secret
}

// CreateUser creates a user with a verified email address and a random
// password in store, and returns both. Each user costs one argon2id hash,
// so tests create few.
func CreateUser(t testing.TB, store *storage.Store, username string) (*storage.User, string) {
	t.Helper()
	password := rand.Text()
	user := &storage.User{
		ID:            uuid.NewString(),
		Username:      username,
		Email:         username + "@example.com",
		EmailVerified: true,
		PasswordHash:  provider.HashPassword(password),
		Name:          "Test " + username,
		GivenName:     "Test",
		FamilyName:    username,
	}
	if err := store.CreateUser(context.Background(), user); err != nil {
		t.Fatalf("create user %s: %v", username, err)
	}
	return user, password
}

// AssignRole gives user the role named roleName directly in store.
func AssignRole(t testing.TB, store *storage.Store, user *storage.User, roleName string) {
	t.Helper()
	ctx := context.Background()
	role, err := store.GetRole(ctx, roleName)
	if err != nil {
		t.Fatalf("get role %s: %v", roleName, err)
	}
	if err := store.AssignRole(ctx, user.ID, role.ID); err != nil {
		t.Fatalf("assign role %s to %s: %v", roleName, user.Username, err)
	}
}
