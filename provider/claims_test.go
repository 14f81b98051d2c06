package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage"
)

// codeFlow signs in (or reuses the browser's session), allows consent if
// asked, and exchanges the code. It returns the token response and the
// consent page's body, empty when none was shown.
func codeFlow(t *testing.T, env *testEnv, b *browser, clientID, secret, password string, params url.Values) (map[string]any, string) {
	t.Helper()
	verifier, challenge := pkcePair()
	params.Set("code_challenge", challenge)
	next := b.Get(authURL(env, params))
	if next.URL.Path == "/login" {
		next = b.Login(env.issuer, next, "claire", password)
	}
	var consentPage string
	if next.URL.Path == "/consent" && next.Status == http.StatusOK {
		consentPage = next.Body
		next = b.decide(env.issuer, next, "allow")
	}
	got := testsupport.CallbackParams(t, next)
	if got.Get("code") == "" {
		t.Fatalf("no code: %v", got)
	}
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {got.Get("code")},
		"redirect_uri": {testsupport.CallbackURL}, "code_verifier": {verifier},
	})
	if status != http.StatusOK {
		t.Fatalf("code exchange: %d %v", status, body)
	}
	return body, consentPage
}

func getUserinfo(t *testing.T, env *testEnv, accessToken string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, env.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestClaimsRequestParameter(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})
	_, password := env.createUser(t, "claire")
	b := newBrowser(t)

	params := validAuthParams(clientID)
	params.Set("claims", `{"userinfo":{"name":{"essential":true},"nickname":null},"id_token":{"email":null,"phone_number":null}}`)
	tokens, consentPage := codeFlow(t, env, b, clientID, secret, password, params)

	// Asking for name and email adds their scopes to what the person
	// approves. The client may not use phone, so phone_number is dropped.
	for _, want := range []string{"See your name and username", "See your email address"} {
		if !strings.Contains(consentPage, want) {
			t.Errorf("the consent page does not list %q", want)
		}
	}
	if strings.Contains(consentPage, "phone") {
		t.Errorf("the consent page lists phone, which the client may not use")
	}
	_, idClaims := decodeJWT(t, tokens["id_token"].(string))
	if idClaims["email"] != "claire@example.com" {
		t.Errorf("id_token email = %v, want the requested claim", idClaims["email"])
	}
	if idClaims["name"] != nil || idClaims["phone_number"] != nil {
		t.Errorf("id_token has claims it should not: name %v phone_number %v", idClaims["name"], idClaims["phone_number"])
	}
	resp, body := getUserinfo(t, env, tokens["access_token"].(string))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d %s", resp.StatusCode, body)
	}
	var userinfo map[string]any
	if err := json.Unmarshal(body, &userinfo); err != nil {
		t.Fatal(err)
	}
	if userinfo["name"] != "Test claire" {
		t.Errorf("userinfo name = %v, want the essential claim", userinfo["name"])
	}
	if userinfo["email"] != nil {
		t.Errorf("userinfo has email %v, which was asked for the ID token only", userinfo["email"])
	}

	for name, claims := range map[string]string{
		"not JSON":             `{"userinfo":`,
		"member not an object": `{"userinfo":{"name":true}}`,
		"values not an array":  `{"id_token":{"acr":{"values":"x"}}}`,
	} {
		bad := validAuthParams(clientID)
		bad.Set("claims", claims)
		got := testsupport.CallbackParams(t, b.Get(authURL(env, bad)))
		if got.Get("error") != "invalid_request" {
			t.Errorf("%s: %v, want invalid_request", name, got)
		}
	}
}

func TestSignedUserinfo(t *testing.T) {
	env := newTestEnv(t)
	client := &storage.Client{
		ID: uuid.NewString(), Name: "Signed userinfo app", RedirectURIs: []string{testsupport.CallbackURL},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "email"}, FirstParty: true, TokenEndpointAuthMethod: "client_secret_basic",
		Metadata: storage.ClientMetadata{UserinfoSignedResponseAlg: "RS256"},
	}
	secret := testsupport.CreateClient(t, env.store, env.secret, client)
	_, password := env.createUser(t, "claire")
	b := newBrowser(t)
	params := validAuthParams(client.ID)
	params.Set("scope", "openid email")
	tokens, _ := codeFlow(t, env, b, client.ID, secret, password, params)

	resp, body := getUserinfo(t, env, tokens["access_token"].(string))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/jwt" {
		t.Fatalf("userinfo: %d %s, want 200 application/jwt", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	provider, err := oidc.NewProvider(context.Background(), env.issuer)
	if err != nil {
		t.Fatal(err)
	}
	// The ID token verifier checks the signature against the published
	// keys, iss and aud, which a signed userinfo response shares.
	verified, err := provider.VerifierContext(context.Background(), &oidc.Config{ClientID: client.ID, SkipExpiryCheck: true}).Verify(context.Background(), string(body))
	if err != nil {
		t.Fatalf("signed userinfo does not verify: %v", err)
	}
	var claims map[string]any
	if err := verified.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims["email"] != "claire@example.com" || claims["nonce"] != nil {
		t.Errorf("signed userinfo claims %v: want email and no nonce", claims)
	}
	_, idClaims := decodeJWT(t, tokens["id_token"].(string))
	if claims["sub"] != idClaims["sub"] || !slices.Contains([]string{client.ID}, claims["aud"].(string)) {
		t.Errorf("signed userinfo sub %v aud %v, want %v and %s", claims["sub"], claims["aud"], idClaims["sub"], client.ID)
	}
}
