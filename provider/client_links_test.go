package provider_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/testsupport"
	"github.com/latchkey/latchkey/storage"
)

func TestLoginPageShowsClientLinks(t *testing.T) {
	env := newTestEnv(t)
	client := &storage.Client{
		ID: uuid.NewString(), Name: "Linked app", RedirectURIs: []string{testsupport.CallbackURL},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid"}, TokenEndpointAuthMethod: "client_secret_basic",
		Metadata: storage.ClientMetadata{
			LogoURI:   "https://app.example/logo.png",
			PolicyURI: "https://app.example/privacy",
			TOSURI:    "https://app.example/terms",
		},
	}
	testsupport.CreateClient(t, env.store, env.secret, client)
	plain, _ := env.createClient(t, clientSpec{})

	page := newBrowser(t).Get(authURL(env, validAuthParams(client.ID)))
	if page.URL.Path != "/login" {
		t.Fatalf("expected the login page, got %s", page.URL)
	}
	for _, want := range []string{
		`src="https://app.example/logo.png"`, `href="https://app.example/privacy"`, `href="https://app.example/terms"`,
	} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("the login page lacks %s", want)
		}
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src https://app.example/logo.png") {
		t.Errorf("Content-Security-Policy %q does not allow the logo alone", csp)
	}

	page = newBrowser(t).Get(authURL(env, validAuthParams(plain)))
	if csp := page.Header.Get("Content-Security-Policy"); strings.Contains(csp, "img-src") {
		t.Errorf("a client without a logo got Content-Security-Policy %q", csp)
	}
	if strings.Contains(page.Body, "<img") {
		t.Errorf("a client without a logo got an image on the login page")
	}
}
