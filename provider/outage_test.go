package provider_test

import (
	"net/http"
	"net/url"
	"testing"
)

func TestDatabaseOutageGives503(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})
	if err := env.db.Close(); err != nil {
		t.Fatal(err)
	}

	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{"grant_type": {"client_credentials"}})
	expectOAuthError(t, status, body, http.StatusServiceUnavailable, "temporarily_unavailable")

	resp, err := http.Get(env.issuer + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/health/ready = %d, want 503", resp.StatusCode)
	}

	got := newBrowser(t).Get(authURL(env, validAuthParams(clientID)))
	if got.Status != http.StatusServiceUnavailable || got.Location != "" {
		t.Errorf("authorize during outage: %d, Location %q; want 503 without redirect", got.Status, got.Location)
	}
}
