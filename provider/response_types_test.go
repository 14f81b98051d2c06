package provider_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testsupport"
)

var allResponseTypes = []string{"code", "id_token", "id_token token", "code id_token", "code token", "code id_token token"}

// halfHash is at_hash and c_hash for an RS256 or ES256 ID token (OpenID
// Connect Core §3.2.2.9, §3.3.2.11).
func halfHash(value string) string {
	sum := sha256.Sum256([]byte(value))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// fragmentParams checks that p redirects to the callback with the response
// in the fragment, and nothing in the query, and returns the fragment.
func fragmentParams(t *testing.T, p *testsupport.Page) url.Values {
	t.Helper()
	if p.Status != http.StatusSeeOther {
		t.Fatalf("expected a redirect, got %d at %s: %.300s", p.Status, p.URL, p.Body)
	}
	target, err := url.Parse(p.Location)
	if err != nil || !strings.HasPrefix(p.Location, testsupport.CallbackURL) {
		t.Fatalf("redirect to %q, want the callback", p.Location)
	}
	if target.RawQuery != "" {
		t.Fatalf("the response put %q in the query; it belongs in the fragment", target.RawQuery)
	}
	params, err := url.ParseQuery(target.Fragment)
	if err != nil {
		t.Fatal(err)
	}
	return params
}

func TestImplicitAndHybridResponseTypes(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{
		firstParty:    true,
		responseTypes: allResponseTypes,
		grantTypes:    []string{"authorization_code", "implicit", "refresh_token"},
	})
	_, password := env.createUser(t, "hugo")
	b := newBrowser(t)
	first := signedInApp(t, env, b, clientID, secret, "hugo", password)
	_, firstClaims := decodeJWT(t, first.Extra("id_token").(string))

	for _, responseType := range allResponseTypes[1:] {
		t.Run(responseType, func(t *testing.T) {
			params := validAuthParams(clientID)
			params.Set("response_type", responseType)
			verifier, challenge := pkcePair()
			params.Set("code_challenge", challenge)
			params.Set("nonce", "nonce-"+strings.ReplaceAll(responseType, " ", "-"))
			got := fragmentParams(t, b.Get(authURL(env, params)))
			if got.Get("error") != "" {
				t.Fatalf("error %s: %s", got.Get("error"), got.Get("error_description"))
			}
			if got.Get("state") != params.Get("state") || got.Get("iss") != env.issuer {
				t.Errorf("state %q iss %q, want %q and %q", got.Get("state"), got.Get("iss"), params.Get("state"), env.issuer)
			}
			types := strings.Fields(responseType)
			has := func(name string) bool { return strings.Contains(" "+responseType+" ", " "+name+" ") }
			for _, name := range []string{"code", "access_token", "id_token"} {
				want := has(name) || name == "access_token" && has("token")
				if (got.Get(name) != "") != want {
					t.Errorf("%s present = %v, want %v (response_type %v)", name, got.Get(name) != "", want, types)
				}
			}
			if has("token") && !strings.EqualFold(got.Get("token_type"), "bearer") {
				t.Errorf("token_type = %q, want Bearer", got.Get("token_type"))
			}
			if !has("id_token") {
				return
			}
			_, claims := decodeJWT(t, got.Get("id_token"))
			if claims["nonce"] != params.Get("nonce") || claims["sub"] != firstClaims["sub"] || claims["aud"] == nil {
				t.Errorf("id_token nonce %v sub %v, want %q and %v", claims["nonce"], claims["sub"], params.Get("nonce"), firstClaims["sub"])
			}
			if has("token") && claims["at_hash"] != halfHash(got.Get("access_token")) {
				t.Errorf("at_hash = %v, want %s", claims["at_hash"], halfHash(got.Get("access_token")))
			}
			if has("code") && claims["c_hash"] != halfHash(got.Get("code")) {
				t.Errorf("c_hash = %v, want %s", claims["c_hash"], halfHash(got.Get("code")))
			}
			if !has("code") {
				return
			}
			status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
				"grant_type": {"authorization_code"}, "code": {got.Get("code")},
				"redirect_uri": {testsupport.CallbackURL}, "code_verifier": {verifier},
			})
			if status != http.StatusOK {
				t.Fatalf("code exchange: %d %v", status, body)
			}
			_, tokenClaims := decodeJWT(t, body["id_token"].(string))
			if tokenClaims["sub"] != claims["sub"] {
				t.Errorf("token endpoint sub %v differs from the front channel's %v", tokenClaims["sub"], claims["sub"])
			}
		})
	}
}

func TestFormPostResponseMode(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{
		firstParty:    true,
		responseTypes: allResponseTypes,
		grantTypes:    []string{"authorization_code", "implicit"},
	})
	_, password := env.createUser(t, "fern")
	b := newBrowser(t)
	signedInApp(t, env, b, clientID, secret, "fern", password)

	for _, responseType := range []string{"code", "code id_token token"} {
		params := validAuthParams(clientID)
		params.Set("response_type", responseType)
		params.Set("response_mode", "form_post")
		page := b.Get(authURL(env, params))
		if page.Status != http.StatusOK || page.Location != "" {
			t.Fatalf("%s: form_post answered %d (Location %q), want a 200 page", responseType, page.Status, page.Location)
		}
		if !strings.Contains(page.Body, `action="`+testsupport.CallbackURL+`"`) || !strings.Contains(page.Body, `method="post"`) {
			t.Errorf("%s: the page has no form posting to the callback: %.500s", responseType, page.Body)
		}
		if !strings.Contains(page.Body, `<button type="submit">`) {
			t.Errorf("%s: the page has no visible button for browsers without scripts", responseType)
		}
		csp := page.Header.Get("Content-Security-Policy")
		for _, directive := range []string{"default-src 'none'", "script-src 'sha256-", "form-action http://127.0.0.1:8080", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, directive) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", responseType, csp, directive)
			}
		}
		if page.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", responseType, page.Header.Get("Cache-Control"))
		}
		fields := testsupport.HiddenInputs(t, page.Body)
		if fields.Get("code") == "" || fields.Get("state") != params.Get("state") || fields.Get("iss") != env.issuer {
			t.Errorf("%s: form fields %v lack code, state or iss", responseType, fields)
		}
		if responseType != "code" && (fields.Get("id_token") == "" || fields.Get("access_token") == "") {
			t.Errorf("%s: form fields %v lack the tokens", responseType, fields)
		}
	}

	// Errors travel the same way.
	params := validAuthParams(clientID)
	params.Set("response_type", "id_token")
	params.Set("response_mode", "form_post")
	params.Del("nonce")
	page := b.Get(authURL(env, params))
	fields := testsupport.HiddenInputs(t, page.Body)
	if page.Status != http.StatusOK || fields.Get("error") != "invalid_request" || fields.Get("iss") != env.issuer {
		t.Errorf("missing nonce with form_post: %d, fields %v, want a form with invalid_request and iss", page.Status, fields)
	}
}

func TestImplicitResponseRules(t *testing.T) {
	env := newTestEnv(t)
	implicitID, _ := env.createClient(t, clientSpec{
		firstParty:    true,
		responseTypes: allResponseTypes,
		grantTypes:    []string{"authorization_code", "implicit"},
	})
	codeOnlyID, _ := env.createClient(t, clientSpec{firstParty: true})
	b := newBrowser(t)

	cases := []struct {
		name, clientID, responseType, responseMode string
		dropNonce                                  bool
		wantError                                  string
	}{
		{"id_token without nonce", implicitID, "id_token", "", true, "invalid_request"},
		{"code id_token without nonce", implicitID, "code id_token", "", true, "invalid_request"},
		{"tokens in the query", implicitID, "id_token token", "query", false, "invalid_request"},
		{"client without implicit", codeOnlyID, "id_token", "", false, "unsupported_response_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			params := validAuthParams(tc.clientID)
			params.Set("response_type", tc.responseType)
			if tc.responseMode != "" {
				params.Set("response_mode", tc.responseMode)
			}
			if tc.dropNonce {
				params.Del("nonce")
			}
			page := b.Get(authURL(env, params))
			target, err := url.Parse(page.Location)
			if err != nil || page.Status != http.StatusSeeOther {
				t.Fatalf("got %d %q, want a redirect with an error", page.Status, page.Location)
			}
			got := target.Query()
			if got.Get("error") == "" {
				got, _ = url.ParseQuery(target.Fragment)
			}
			if got.Get("error") != tc.wantError || got.Get("iss") != env.issuer || got.Get("state") != params.Get("state") {
				t.Errorf("response %v, want error %s with iss and state", got, tc.wantError)
			}
			if got.Get("id_token") != "" || got.Get("access_token") != "" || got.Get("code") != "" {
				t.Errorf("an error response carried a credential: %v", got)
			}
		})
	}
}
