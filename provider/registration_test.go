package provider_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// jsonEqual reports whether two values encode to the same JSON.
func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	var decodedA, decodedB any
	if err := json.Unmarshal(mustJSON(t, a), &decodedA); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustJSON(t, b), &decodedB); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(decodedA, decodedB)
}

// checkErrorDescription checks that an error_description uses only the
// characters RFC 6749 §5.2 allows.
func checkErrorDescription(t *testing.T, body map[string]any) {
	t.Helper()
	description, _ := body["error_description"].(string)
	if description == "" {
		t.Errorf("error response has no error_description: %v", redacted(body))
	}
	for _, r := range description {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			t.Errorf("error_description has character %q, which RFC 6749 does not allow: %q", r, description)
			return
		}
	}
}

func TestRegistrationResponse(t *testing.T) {
	env := newRegistrationEnv(t)
	key := newRSAKey(t)
	jwks := keySet(t, jose.JSONWebKey{Key: &key.PublicKey, Use: "sig", Algorithm: "RS256"})
	request := map[string]any{
		"redirect_uris":                        []string{"https://app.example.com/cb?tenant=eu", "http://127.0.0.1:8080/callback"},
		"response_types":                       []string{"code", "id_token code"},
		"grant_types":                          []string{"authorization_code", "implicit", "refresh_token"},
		"client_name":                          "Dynamic app",
		"contacts":                             []string{"ops@example.com"},
		"logo_uri":                             "https://app.example.com/logo.png",
		"client_uri":                           "https://app.example.com/",
		"policy_uri":                           "https://app.example.com/privacy",
		"tos_uri":                              "https://app.example.com/terms",
		"scope":                                "openid email offline_access",
		"jwks":                                 jwks,
		"id_token_signed_response_alg":         "ES256",
		"userinfo_signed_response_alg":         "RS256",
		"request_object_signing_alg":           "RS256",
		"token_endpoint_auth_method":           "client_secret_post",
		"request_uris":                         []string{"https://app.example.com/request.jwt#digest"},
		"post_logout_redirect_uris":            []string{"https://app.example.com/signed-out"},
		"backchannel_logout_uri":               "https://app.example.com/backchannel",
		"backchannel_logout_session_required":  true,
		"frontchannel_logout_uri":              "https://app.example.com/frontchannel",
		"frontchannel_logout_session_required": true,
		"subject_type":                         "public",
		"software_id":                          "an unknown member, to be ignored",
	}
	before := time.Now().Add(-time.Second).Unix()
	status, header, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", "", request)
	if status != http.StatusCreated {
		t.Fatalf("status %d, expected 201: %v", status, redacted(body))
	}
	if got := header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, expected no-store", got)
	}
	if got := header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("Content-Type = %q, expected application/json", got)
	}

	clientID, _ := body["client_id"].(string)
	secret, _ := body["client_secret"].(string)
	accessToken, _ := body["registration_access_token"].(string)
	if clientID == "" || accessToken == "" {
		t.Fatalf("response lacks client_id or registration_access_token: %v", redacted(body))
	}
	if secret == "" || strings.ContainsAny(secret, "+%") {
		t.Errorf("client_secret = %q, expected a secret without '+' or '%%'", secret)
	}
	if body["client_secret_expires_at"] != float64(0) {
		t.Errorf("client_secret_expires_at = %v, expected 0", body["client_secret_expires_at"])
	}
	if issuedAt, _ := body["client_id_issued_at"].(float64); int64(issuedAt) < before || int64(issuedAt) > time.Now().Unix() {
		t.Errorf("client_id_issued_at = %v, expected the time of the request", body["client_id_issued_at"])
	}
	if body["registration_client_uri"] != env.issuer+"/oauth2/register/"+clientID {
		t.Errorf("registration_client_uri = %v", body["registration_client_uri"])
	}

	expected := map[string]any{}
	for name, value := range request {
		expected[name] = value
	}
	expected["response_types"] = []string{"code", "code id_token"}
	delete(expected, "software_id")
	for name, want := range expected {
		if !jsonEqual(t, body[name], want) {
			t.Errorf("%s = %v, expected %v", name, body[name], want)
		}
	}
	if _, ok := body["software_id"]; ok {
		t.Errorf("the unknown member software_id was echoed")
	}

	ctx := context.Background()
	stored, err := env.store.GetClientByID(ctx, clientID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.FirstParty || len(stored.Audience) != 0 || !stored.Metadata.Dynamic {
		t.Errorf("stored client: first party %t, audience %v, dynamic %t; expected a third-party dynamic client without audience",
			stored.FirstParty, stored.Audience, stored.Metadata.Dynamic)
	}
	if len(stored.Metadata.RegistrationAccessTokenHash) == 0 || strings.Contains(string(stored.Metadata.RegistrationAccessTokenHash), accessToken) {
		t.Errorf("the registration access token is not stored as a hash")
	}
	if len(stored.Metadata.SealedSecret) != 0 {
		t.Errorf("a client_secret_post client has a sealed secret")
	}

	events, err := env.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "client.registered", Subject: clientID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d client.registered audit events, expected 1", len(events))
	}
	details := string(mustJSON(t, events[0].Details))
	if strings.Contains(details, secret) || strings.Contains(details, accessToken) {
		t.Errorf("the audit event records a secret: %s", details)
	}

	status, _, discovery := sendJSON(t, http.MethodGet, env.issuer+"/.well-known/openid-configuration", "", nil)
	if status != http.StatusOK || discovery["registration_endpoint"] != env.issuer+"/oauth2/register" {
		t.Errorf("discovery registration_endpoint = %v, expected %s", discovery["registration_endpoint"], env.issuer+"/oauth2/register")
	}
	for _, method := range []string{"private_key_jwt", "client_secret_jwt"} {
		if !jsonContains(discovery["token_endpoint_auth_methods_supported"], method) {
			t.Errorf("token_endpoint_auth_methods_supported lacks %s: %v", method, discovery["token_endpoint_auth_methods_supported"])
		}
	}
	if !jsonContains(discovery["token_endpoint_auth_signing_alg_values_supported"], "RS256") {
		t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v", discovery["token_endpoint_auth_signing_alg_values_supported"])
	}
}

func jsonContains(list any, value string) bool {
	values, _ := list.([]any)
	for _, v := range values {
		if v == value {
			return true
		}
	}
	return false
}

func TestRegistrationDefaults(t *testing.T) {
	env := newRegistrationEnv(t)
	body := registerClientOK(t, env, map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}})

	expected := map[string]any{
		"grant_types":                  []string{"authorization_code"},
		"response_types":               []string{"code"},
		"token_endpoint_auth_method":   "client_secret_basic",
		"id_token_signed_response_alg": "RS256",
		"subject_type":                 "public",
		"scope":                        "openid profile email address phone offline_access",
	}
	for name, want := range expected {
		if !jsonEqual(t, body[name], want) {
			t.Errorf("default %s = %v, expected %v", name, body[name], want)
		}
	}

	public := registerClientOK(t, env, map[string]any{
		"redirect_uris": []string{"http://localhost:5173/cb"}, "token_endpoint_auth_method": "none",
	})
	if _, ok := public["client_secret"]; ok {
		t.Errorf("a public client was issued a client_secret")
	}
}

func TestRegistrationRejectsBadMetadata(t *testing.T) {
	env := newRegistrationEnv(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := newRSAKey(t)
	publicJWKS := keySet(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, Use: "sig"})

	cases := map[string]struct {
		change    func(m map[string]any)
		errorCode string
		mentions  string
	}{
		"fragment in a redirect URI": {func(m map[string]any) { m["redirect_uris"] = []string{"https://app.example.com/cb#frag"} },
			"invalid_redirect_uri", "fragment"},
		"http redirect URI on a public host": {func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example.com/cb"} },
			"invalid_redirect_uri", "non-loopback"},
		"custom scheme redirect URI": {func(m map[string]any) { m["redirect_uris"] = []string{"com.example.app:/cb"} },
			"invalid_redirect_uri", "redirect_uris"},
		"relative redirect URI": {func(m map[string]any) { m["redirect_uris"] = []string{"/cb"} },
			"invalid_redirect_uri", "absolute"},
		"no redirect URI for the code grant": {func(m map[string]any) { delete(m, "redirect_uris") },
			"invalid_redirect_uri", "required"},
		"pairwise subject": {func(m map[string]any) { m["subject_type"] = "pairwise" },
			"invalid_client_metadata", "pairwise subject identifiers are not supported"},
		"sector identifier URI": {func(m map[string]any) { m["sector_identifier_uri"] = "https://app.example.com/sector.json" },
			"invalid_client_metadata", "pairwise"},
		"unsigned ID tokens": {func(m map[string]any) { m["id_token_signed_response_alg"] = "none" },
			"invalid_client_metadata", "id_token_signed_response_alg"},
		"unsigned userinfo responses": {func(m map[string]any) { m["userinfo_signed_response_alg"] = "none" },
			"invalid_client_metadata", "userinfo_signed_response_alg"},
		"admin scope": {func(m map[string]any) { m["scope"] = "openid admin" },
			"invalid_client_metadata", "admin"},
		"account scope": {func(m map[string]any) { m["scope"] = "openid account" },
			"invalid_client_metadata", "account"},
		"roles scope": {func(m map[string]any) { m["scope"] = "openid roles" },
			"invalid_client_metadata", "roles"},
		"implicit response type without the implicit grant": {func(m map[string]any) {
			m["response_types"] = []string{"code id_token"}
			m["grant_types"] = []string{"authorization_code"}
		}, "invalid_client_metadata", "implicit"},
		"code response type without the authorization_code grant": {func(m map[string]any) {
			m["response_types"] = []string{"code"}
			m["grant_types"] = []string{"implicit"}
		}, "invalid_client_metadata", "authorization_code"},
		"bare token response type": {func(m map[string]any) {
			m["response_types"] = []string{"token"}
			m["grant_types"] = []string{"implicit"}
		}, "invalid_client_metadata", "response_types"},
		"password grant":      {func(m map[string]any) { m["grant_types"] = []string{"password"} }, "invalid_client_metadata", "password"},
		"unknown auth method": {func(m map[string]any) { m["token_endpoint_auth_method"] = "tls_client_auth" }, "invalid_client_metadata", "tls_client_auth"},
		"private_key_jwt without keys": {func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" },
			"invalid_client_metadata", "jwks"},
		"jwks and jwks_uri": {func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = publicJWKS
			m["jwks_uri"] = "https://app.example.com/jwks.json"
		}, "invalid_client_metadata", "jwks_uri"},
		"private key in jwks": {func(m map[string]any) {
			m["jwks"] = keySet(t, jose.JSONWebKey{Key: ecKey, Use: "sig"})
		}, "invalid_client_metadata", "public"},
		"symmetric key in jwks": {func(m map[string]any) {
			m["jwks"] = keySet(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef")})
		}, "invalid_client_metadata", "public"},
		"jwks that is not a key set": {func(m map[string]any) { m["jwks"] = map[string]any{"keys": "none"} },
			"invalid_client_metadata", "jwks"},
		"HMAC assertions with private_key_jwt": {func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = publicJWKS
			m["token_endpoint_auth_signing_alg"] = "HS256"
		}, "invalid_client_metadata", "HS256"},
		"public client with client_credentials": {func(m map[string]any) {
			m["token_endpoint_auth_method"] = "none"
			m["grant_types"] = []string{"authorization_code", "client_credentials"}
		}, "invalid_client_metadata", "client_credentials"},
		"encrypted ID tokens": {func(m map[string]any) { m["id_token_encrypted_response_alg"] = "RSA-OAEP" },
			"invalid_client_metadata", "id_token_encrypted_response_alg"},
		"http logo URI on a public host": {func(m map[string]any) { m["logo_uri"] = "http://app.example.com/logo.png" },
			"invalid_client_metadata", "logo_uri"},
		"front-channel logout URI on another host": {func(m map[string]any) { m["frontchannel_logout_uri"] = "https://other.example.com/logout" },
			"invalid_client_metadata", "frontchannel_logout_uri"},
		"back-channel logout URI with a fragment": {func(m map[string]any) { m["backchannel_logout_uri"] = "https://app.example.com/logout#x" },
			"invalid_client_metadata", "backchannel_logout_uri"},
		"non-https initiate_login_uri": {func(m map[string]any) { m["initiate_login_uri"] = "http://app.example.com/login" },
			"invalid_client_metadata", "initiate_login_uri"},
		"redirect_uris that is not an array": {func(m map[string]any) { m["redirect_uris"] = "https://app.example.com/cb" },
			"invalid_client_metadata", "redirect_uris"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			metadata := map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}}
			tc.change(metadata)
			status, header, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", "", metadata)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, expected 400: %v", status, redacted(body))
			}
			if body["error"] != tc.errorCode {
				t.Errorf("error = %v, expected %s: %v", body["error"], tc.errorCode, body["error_description"])
			}
			if description, _ := body["error_description"].(string); !strings.Contains(description, tc.mentions) {
				t.Errorf("error_description %q does not mention %q", description, tc.mentions)
			}
			checkErrorDescription(t, body)
			if got := header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, expected no-store", got)
			}
		})
	}

	for name, send := range map[string]func() (int, map[string]any){
		"body that is not JSON": func() (int, map[string]any) {
			status, _, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", "", "redirect_uris=https://app.example.com/cb")
			return status, body
		},
		"form content type": func() (int, map[string]any) {
			status, _, body := postForm(t, env.issuer+"/oauth2/register", "", "", map[string][]string{"redirect_uris": {"https://app.example.com/cb"}})
			return status, body
		},
	} {
		status, body := send()
		if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
			t.Errorf("%s: status %d %v, expected 400 invalid_client_metadata", name, status, redacted(body))
		}
	}

	clients, err := env.store.ListClients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(clients) != 0 {
		t.Errorf("%d clients stored after rejected registrations, expected none", len(clients))
	}
}

func TestRegistrationManagement(t *testing.T) {
	env := newRegistrationEnv(t)
	created := registerClientOK(t, env, map[string]any{
		"redirect_uris": []string{"https://app.example.com/cb"},
		"client_name":   "Before",
		"scope":         "openid email",
	})
	clientID := created["client_id"].(string)
	token := created["registration_access_token"].(string)
	clientURI := created["registration_client_uri"].(string)
	other := registerClientOK(t, env, map[string]any{"redirect_uris": []string{"https://other.example.com/cb"}})
	otherToken := other["registration_access_token"].(string)

	for name, bearer := range map[string]string{
		"no token": "", "a wrong token": "not-the-token", "another client's token": otherToken,
	} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			var body any
			if method == http.MethodPut {
				body = map[string]any{"client_id": clientID, "redirect_uris": []string{"https://evil.example.com/cb"}}
			}
			status, header, response := sendJSON(t, method, clientURI, bearer, body)
			if status != http.StatusUnauthorized || response["error"] != "invalid_token" {
				t.Errorf("%s with %s: status %d %v, expected 401 invalid_token", method, name, status, redacted(response))
			}
			challenge := header.Get("WWW-Authenticate")
			if !strings.HasPrefix(challenge, "Bearer") || (bearer != "") != strings.Contains(challenge, `error="invalid_token"`) {
				t.Errorf("%s with %s: WWW-Authenticate %q", method, name, challenge)
			}
		}
	}

	status, _, read := sendJSON(t, http.MethodGet, clientURI, token, nil)
	if status != http.StatusOK {
		t.Fatalf("read: status %d %v", status, redacted(read))
	}
	if read["client_id"] != clientID || read["client_name"] != "Before" || read["scope"] != "openid email" ||
		read["registration_client_uri"] != clientURI {
		t.Errorf("read returned %v", redacted(read))
	}
	for _, secret := range []string{"client_secret", "registration_access_token"} {
		if _, ok := read[secret]; ok {
			t.Errorf("read returned %s, of which only a hash is kept", secret)
		}
	}

	rejected := map[string]map[string]any{
		"another client_id":   {"client_id": other["client_id"], "redirect_uris": []string{"https://app.example.com/cb"}},
		"no client_id":        {"redirect_uris": []string{"https://app.example.com/cb"}},
		"a wrong secret":      {"client_id": clientID, "client_secret": "wrong", "redirect_uris": []string{"https://app.example.com/cb"}},
		"the admin scope":     {"client_id": clientID, "redirect_uris": []string{"https://app.example.com/cb"}, "scope": "openid admin"},
		"a fragment redirect": {"client_id": clientID, "redirect_uris": []string{"https://app.example.com/cb#x"}},
	}
	for name, update := range rejected {
		status, _, body := sendJSON(t, http.MethodPut, clientURI, token, update)
		if status != http.StatusBadRequest {
			t.Errorf("update with %s: status %d %v, expected 400", name, status, redacted(body))
		}
	}

	status, _, updated := sendJSON(t, http.MethodPut, clientURI, token, map[string]any{
		"client_id":                  clientID,
		"client_secret":              created["client_secret"],
		"client_name":                "After",
		"redirect_uris":              []string{"https://app.example.com/new-cb"},
		"grant_types":                []string{"authorization_code", "client_credentials"},
		"token_endpoint_auth_method": "client_secret_jwt",
	})
	if status != http.StatusOK {
		t.Fatalf("update: status %d %v", status, redacted(updated))
	}
	newSecret, _ := updated["client_secret"].(string)
	if newSecret == "" || newSecret == created["client_secret"] || updated["client_secret_expires_at"] != float64(0) {
		t.Errorf("switching to client_secret_jwt: new secret issued %t, client_secret_expires_at %v; expected a new secret that does not expire",
			newSecret != "" && newSecret != created["client_secret"], updated["client_secret_expires_at"])
	}
	if updated["scope"] != "openid profile email address phone offline_access" {
		t.Errorf("scope left out of the update = %v, expected the default", updated["scope"])
	}
	status, _, read = sendJSON(t, http.MethodGet, clientURI, token, nil)
	if status != http.StatusOK || read["client_name"] != "After" || !jsonEqual(t, read["redirect_uris"], []string{"https://app.example.com/new-cb"}) {
		t.Errorf("read after update: status %d %v", status, redacted(read))
	}
	tokenURL := env.issuer + "/oauth2/token"
	status, _, body := postForm(t, tokenURL, "", "", withAssertion(map[string][]string{"grant_type": {"client_credentials"}},
		signAssertion(t, []byte(newSecret), jose.HS256, "", assertionClaims(clientID, tokenURL))))
	if status != http.StatusOK {
		t.Errorf("client_credentials with the new secret: status %d %v", status, redacted(body))
	}

	status, _, updated = sendJSON(t, http.MethodPut, clientURI, token, map[string]any{
		"client_id": clientID, "redirect_uris": []string{"https://app.example.com/new-cb"},
		"grant_types": []string{"authorization_code", "client_credentials"}, "token_endpoint_auth_method": "client_secret_jwt",
	})
	if status != http.StatusOK {
		t.Fatalf("second update: status %d %v", status, redacted(updated))
	}
	if _, ok := updated["client_secret"]; ok {
		t.Errorf("an update that keeps client_secret_jwt issued a new secret")
	}

	if status, _, body := sendJSON(t, http.MethodDelete, clientURI, token, nil); status != http.StatusNoContent {
		t.Fatalf("delete: status %d %v, expected 204", status, redacted(body))
	}
	if status, _, _ := sendJSON(t, http.MethodGet, clientURI, token, nil); status != http.StatusUnauthorized {
		t.Errorf("read after delete: status %d, expected 401", status)
	}
	if status, _, _ := sendJSON(t, http.MethodDelete, clientURI, token, nil); status != http.StatusUnauthorized {
		t.Errorf("second delete: status %d, expected 401", status)
	}
	if _, err := env.store.GetClientByID(context.Background(), clientID); err == nil {
		t.Errorf("the deleted client is still stored")
	}

	for _, action := range []string{"client.updated", "client.deleted"} {
		events, err := env.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: action, Subject: clientID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"client.updated": 2, "client.deleted": 1}[action]; len(events) != want {
			t.Errorf("%d %s audit events, expected %d", len(events), action, want)
		}
	}
}

func TestRegistrationWithInitialAccessToken(t *testing.T) {
	initialToken := "initial-" + rand.Text() + rand.Text()
	env := newRegistrationEnv(t, func(cfg *provider.Config) {
		cfg.Registration = provider.RegistrationToken
		cfg.RegistrationToken = initialToken
	})
	metadata := map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}}

	for name, bearer := range map[string]string{"no token": "", "a wrong token": initialToken + "x"} {
		status, header, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", bearer, metadata)
		if status != http.StatusUnauthorized || body["error"] != "invalid_token" {
			t.Errorf("register with %s: status %d %v, expected 401 invalid_token", name, status, redacted(body))
		}
		if !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("register with %s: WWW-Authenticate %q", name, header.Get("WWW-Authenticate"))
		}
	}
	status, _, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", initialToken, metadata)
	if status != http.StatusCreated {
		t.Fatalf("register with the initial access token: status %d %v", status, redacted(body))
	}
}

func TestRegistrationOff(t *testing.T) {
	env := newTestEnv(t)
	status, _, body := sendJSON(t, http.MethodPost, env.issuer+"/oauth2/register", "",
		map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}})
	if status != http.StatusNotFound || body["error"] == nil {
		t.Errorf("register with registration off: status %d %v, expected a 404 JSON error", status, redacted(body))
	}
	if status, _, _ := sendJSON(t, http.MethodGet, env.issuer+"/oauth2/register/some-client", "token", nil); status != http.StatusNotFound {
		t.Errorf("read with registration off: status %d, expected 404", status)
	}
	_, _, discovery := sendJSON(t, http.MethodGet, env.issuer+"/.well-known/openid-configuration", "", nil)
	if _, ok := discovery["registration_endpoint"]; ok {
		t.Errorf("discovery names a registration_endpoint although registration is off")
	}
}

func TestRegistrationSettingsAreChecked(t *testing.T) {
	long := strings.Repeat("k", provider.MinRegistrationTokenLength)
	cases := []struct {
		mode  provider.RegistrationMode
		token string
		valid bool
	}{
		{"", "", true},
		{provider.RegistrationOff, "", true},
		{provider.RegistrationOpen, "", true},
		{provider.RegistrationToken, long, true},
		{provider.RegistrationToken, long[1:], false},
		{provider.RegistrationToken, "", false},
		{"closed", "", false},
	}
	for _, tc := range cases {
		err := provider.CheckRegistrationSettings(tc.mode, tc.token)
		if (err == nil) != tc.valid {
			t.Errorf("mode %q with a %d-character token: error %v, expected valid %t", tc.mode, len(tc.token), err, tc.valid)
		}
	}

	env := newTestEnv(t)
	_, err := provider.New(provider.Config{
		Issuer: env.issuer, SystemSecret: env.secret, Logger: testsupport.Logger(),
		Registration: provider.RegistrationToken, RegistrationToken: "short",
	}, env.store, storagetest.NewSessionStore(t), env.keys)
	if err == nil {
		t.Errorf("New accepted registration mode token with a 5-character token")
	}
}
