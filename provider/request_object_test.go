package provider_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage"
)

// unsignedObject encodes claims as a request object with alg none.
func unsignedObject(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
}

func signedObject(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	options := (&jose.SignerOptions{}).WithType("oauth-authz-req+jwt")
	if kid != "" {
		options = options.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, options)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	signed, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := signed.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func publicJWKS(t *testing.T, key *rsa.PrivateKey, kid string) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// callbackParams returns the query of a redirect to the callback.
func redirectParams(t *testing.T, p *testsupport.Page) url.Values {
	t.Helper()
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, testsupport.CallbackURL) {
		t.Fatalf("got %d to %q, want a redirect to the callback: %.300s", p.Status, p.Location, p.Body)
	}
	u, _ := url.Parse(p.Location)
	return u.Query()
}

func TestRequestObjects(t *testing.T) {
	env := newTestEnv(t)
	clientKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	var served string
	objects := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(served))
	}))
	t.Cleanup(objects.Close)
	registeredURI := objects.URL + "/request/abc#frag-registered"

	newClient := func(metadata storage.ClientMetadata) (string, string) {
		client := &storage.Client{
			ID: uuid.NewString(), Name: "Request object app", RedirectURIs: []string{testsupport.CallbackURL},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: []string{"openid", "profile", "email", "offline_access"}, FirstParty: true, TokenEndpointAuthMethod: "client_secret_basic",
			Metadata: metadata,
		}
		return client.ID, testsupport.CreateClient(t, env.store, env.secret, client)
	}
	openClient, openSecret := newClient(storage.ClientMetadata{JWKS: publicJWKS(t, clientKey, ""), RequestURIs: []string{registeredURI}})
	signedOnly, _ := newClient(storage.ClientMetadata{JWKS: publicJWKS(t, clientKey, "k1"), RequestObjectSigningAlg: "RS256"})

	_, password := env.createUser(t, "remy")
	b := newBrowser(t)
	signedInApp(t, env, b, openClient, openSecret, "remy", password)

	objectClaims := func(clientID string) map[string]any {
		_, challenge := pkcePair()
		return map[string]any{
			"iss": clientID, "aud": env.issuer, "exp": time.Now().Add(time.Minute).Unix(),
			"client_id": clientID, "response_type": "code", "scope": "openid profile",
			"redirect_uri": testsupport.CallbackURL, "state": "state-from-object", "nonce": "nonce-from-object",
			"code_challenge": challenge, "code_challenge_method": "S256", "max_age": 86400,
		}
	}
	// The query repeats only what OAuth 2.0 requires; state and nonce are
	// in the object alone, as the conformance suite sends them.
	query := func(clientID string) url.Values {
		return url.Values{
			"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid"},
			"redirect_uri": {testsupport.CallbackURL + "/_invalid"},
		}
	}

	cases := []struct {
		name      string
		clientID  string
		param     string
		object    func(clientID string) string
		wantError string
	}{
		{"unsigned", openClient, "request", func(id string) string { return unsignedObject(t, objectClaims(id)) }, ""},
		{"signed without kid", openClient, "request", func(id string) string { return signedObject(t, clientKey, "", objectClaims(id)) }, ""},
		{"signed with kid", signedOnly, "request", func(id string) string { return signedObject(t, clientKey, "k1", objectClaims(id)) }, ""},
		{"by reference", openClient, "request_uri", func(id string) string {
			served = unsignedObject(t, objectClaims(id))
			return objects.URL + "/request/abc#another-fragment"
		}, ""},
		{"signed by another key", openClient, "request", func(id string) string { return signedObject(t, otherKey, "", objectClaims(id)) }, "invalid_request_object"},
		{"unsigned where RS256 is registered", signedOnly, "request", func(id string) string { return unsignedObject(t, objectClaims(id)) }, "invalid_request_object"},
		{"expired", openClient, "request", func(id string) string {
			claims := objectClaims(id)
			claims["exp"] = time.Now().Add(-time.Hour).Unix()
			return signedObject(t, clientKey, "", claims)
		}, "invalid_request_object"},
		{"another client's object", openClient, "request", func(id string) string {
			claims := objectClaims(id)
			claims["client_id"] = signedOnly
			return unsignedObject(t, claims)
		}, "invalid_request_object"},
		{"unregistered request_uri", openClient, "request_uri", func(string) string { return objects.URL + "/request/other" }, "invalid_request_uri"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := query(tc.clientID)
			if tc.wantError != "" {
				// An object that fails leaves only the query, so the error
				// goes to the query's redirect_uri, which must be valid.
				params.Set("redirect_uri", testsupport.CallbackURL)
			}
			params.Set(tc.param, tc.object(tc.clientID))
			got := redirectParams(t, b.Get(authURL(env, params)))
			if tc.wantError != "" {
				if got.Get("error") != tc.wantError || got.Get("code") != "" {
					t.Fatalf("got %v, want error %s", got, tc.wantError)
				}
				return
			}
			if got.Get("code") == "" || got.Get("state") != "state-from-object" {
				t.Fatalf("got %v, want a code and the object's state", got)
			}
		})
	}
}
