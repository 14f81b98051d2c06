package provider_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/latchkey/latchkey/internal/testsupport"
)

func TestAuthorizationResponsesNameIssuer(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "tess")

	// An error response: prompt=none without a session.
	params := validAuthParams(clientID)
	params.Set("prompt", "none")
	b := newBrowser(t)
	failure := testsupport.CallbackParams(t, b.Get(authURL(env, params)))
	if failure.Get("error") != "login_required" {
		t.Fatalf("prompt=none without a session: %v, want login_required", failure)
	}
	if failure.Get("iss") != env.issuer {
		t.Errorf("error response iss = %q, want %q", failure.Get("iss"), env.issuer)
	}

	// A success response, after signing in.
	signedInApp(t, env, b, clientID, secret, "tess", password)
	success := testsupport.CallbackParams(t, b.Get(authURL(env, params)))
	if success.Get("code") == "" {
		t.Fatalf("prompt=none with a session: %v, want a code", success)
	}
	if success.Get("iss") != env.issuer {
		t.Errorf("success response iss = %q, want %q", success.Get("iss"), env.issuer)
	}
	if success.Get("state") != params.Get("state") {
		t.Errorf("state = %q, want %q", success.Get("state"), params.Get("state"))
	}

	resp, err := http.Get(env.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var metadata map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&metadata); err != nil {
		t.Fatal(err)
	}
	if metadata["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("discovery authorization_response_iss_parameter_supported = %v, want true", metadata["authorization_response_iss_parameter_supported"])
	}
}
