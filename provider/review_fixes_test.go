package provider_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
)

// TestMultipartAuthorizationRequestObject checks that a request object
// sent in a multipart body is expanded by Latchkey, like one in the query,
// and never reaches fosite's own request object handling.
func TestMultipartAuthorizationRequestObject(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "mona")
	b := newBrowser(t)
	signedInApp(t, env, b, clientID, secret, "mona", password)

	_, challenge := pkcePair()
	object := unsignedObject(t, map[string]any{
		"client_id": clientID, "response_type": "code", "scope": "openid", "redirect_uri": testsupport.CallbackURL,
		"state": "state-in-multipart-object", "nonce": "nonce-in-multipart-object",
		"code_challenge": challenge, "code_challenge_method": "S256",
	})
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	for name, value := range map[string]string{
		"client_id": clientID, "response_type": "code", "scope": "openid", "redirect_uri": testsupport.CallbackURL, "request": object,
	} {
		_ = form.WriteField(name, value)
	}
	_ = form.Close()
	req, _ := http.NewRequest(http.MethodPost, env.issuer+"/oauth2/auth", &body)
	req.Header.Set("Content-Type", form.FormDataContentType())
	got := redirectParams(t, b.Do(req))
	if got.Get("code") == "" || got.Get("state") != "state-in-multipart-object" {
		t.Fatalf("multipart request object: %v, want a code and the object's state", got)
	}
}

func TestPublicImplicitClientNeedsNoPKCE(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{firstParty: true, public: true, responseTypes: []string{"code", "id_token"}})
	// createClientWithID sets a public client's grant types; give it implicit.
	client, err := env.store.GetClientByID(t.Context(), clientID)
	if err != nil {
		t.Fatal(err)
	}
	client.GrantTypes = append(client.GrantTypes, "implicit")
	if err := env.store.UpdateClient(t.Context(), client); err != nil {
		t.Fatal(err)
	}
	_, password := env.createUser(t, "nico")
	b := newBrowser(t)
	params := validAuthParams(clientID)
	params.Set("response_type", "id_token")
	params.Del("code_challenge")
	params.Del("code_challenge_method")
	next := b.Get(authURL(env, params))
	if next.URL.Path == "/login" {
		next = b.Login(env.issuer, next, "nico", password)
	}
	got := fragmentParams(t, next)
	if got.Get("id_token") == "" {
		t.Fatalf("implicit flow of a public client without PKCE: %v, want an id_token", got)
	}
}

func TestClaimsParameterSubjectAndEssentialACR(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "olga")
	b := newBrowser(t)
	signedInApp(t, env, b, clientID, secret, "olga", password)

	params := validAuthParams(clientID)
	params.Set("prompt", "none")
	params.Set("claims", `{"id_token":{"sub":{"value":"someone-else"}}}`)
	if got := testsupport.CallbackParams(t, b.Get(authURL(env, params))); got.Get("error") != "login_required" {
		t.Errorf("claims asking for another sub with prompt=none: %v, want login_required", got)
	}

	params = validAuthParams(clientID)
	params.Set("claims", `{"id_token":{"acr":{"essential":true,"values":["urn:example:acr:unknown"]}}}`)
	if got := testsupport.CallbackParams(t, b.Get(authURL(env, params))); got.Get("error") != "access_denied" {
		t.Errorf("an essential acr that cannot be met: %v, want access_denied", got)
	}

	params = validAuthParams(clientID)
	params.Set("claims", `{"id_token":{"acr":{"essential":true,"values":["urn:latchkey:acr:pwd"]}}}`)
	if got := testsupport.CallbackParams(t, b.Get(authURL(env, params))); got.Get("code") == "" {
		t.Errorf("an essential acr the sign-in meets: %v, want a code", got)
	}
}

func TestRegistrationRejectsHostsThatBreakPolicies(t *testing.T) {
	env := newRegistrationEnv(t)
	for _, uri := range []string{"https://127.0.0.1;/cb", "https://a,b.example/cb", "https://a'b.example/cb"} {
		status, _, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", "", map[string]any{
			"redirect_uris": []string{"https://app.example/cb"}, "frontchannel_logout_uri": uri,
		})
		if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
			t.Errorf("frontchannel_logout_uri %q: status %d %v, want 400 invalid_client_metadata", uri, status, body["error"])
		}
	}
}

func TestKeylessAssertionUsesAnyRegisteredKey(t *testing.T) {
	env := newRegistrationEnv(t)
	key := newRSAKey(t)
	registered := registerClientOK(t, env, map[string]any{
		"grant_types":                []string{"client_credentials"},
		"token_endpoint_auth_method": "private_key_jwt",
		"jwks":                       keySet(t, jose.JSONWebKey{Key: &key.PublicKey, KeyID: "only", Use: "sig", Algorithm: "RS256"}),
	})
	clientID := registered["client_id"].(string)
	tokenURL := env.issuer + "/oauth2/token"
	assertion := signAssertion(t, key, jose.RS256, "", assertionClaims(clientID, tokenURL))
	status, _, body := postForm(t, tokenURL, "", "", withAssertion(url.Values{"grant_type": {"client_credentials"}}, assertion))
	if status != http.StatusOK {
		t.Errorf("an assertion without kid from the only registered key: status %d %v, want 200", status, redacted(body))
	}
}

// TestPrivateAddressesAreNotFetched checks that, outside development, a
// registered request_uri or jwks_uri on an internal address is refused at
// dial time, and the response does not tell why.
func TestPrivateAddressesAreNotFetched(t *testing.T) {
	var fetches atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte("not a request object"))
	}))
	t.Cleanup(internal.Close)

	env := newTestEnv(t, func(cfg *provider.Config) {
		cfg.AllowPrivateFetches = false
		cfg.Registration = provider.RegistrationOpen
	})
	key := newRSAKey(t)
	registered := registerClientOK(t, env, map[string]any{
		"redirect_uris":              []string{testsupport.CallbackURL},
		"request_uris":               []string{internal.URL + "/request"},
		"grant_types":                []string{"authorization_code", "client_credentials"},
		"token_endpoint_auth_method": "private_key_jwt",
		"jwks_uri":                   internal.URL + "/jwks",
	})
	clientID := registered["client_id"].(string)

	params := validAuthParams(clientID)
	params.Set("request_uri", internal.URL+"/request")
	got := redirectParams(t, newBrowser(t).Get(authURL(env, params)))
	if got.Get("error") != "invalid_request_uri" {
		t.Errorf("request_uri on 127.0.0.1: %v, want invalid_request_uri", got)
	}

	tokenURL := env.issuer + "/oauth2/token"
	status, _, body := postForm(t, tokenURL, "", "", withAssertion(url.Values{"grant_type": {"client_credentials"}},
		signAssertion(t, key, jose.RS256, "", assertionClaims(clientID, tokenURL))))
	expectInvalidClient(t, "assertion whose jwks_uri is on 127.0.0.1", status, body)

	if n := fetches.Load(); n != 0 {
		t.Errorf("the internal server was reached %d times", n)
	}
}
