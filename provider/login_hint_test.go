package provider_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testsupport"
)

func TestLoginHintFillsUsername(t *testing.T) {
	env := newTestEnv(t)
	clientID, _ := env.createClient(t, clientSpec{firstParty: true})
	b := newBrowser(t)

	params := validAuthParams(clientID)
	params.Set("login_hint", `ann"<b>`)
	page := b.Get(authURL(env, params))
	if page.URL.Path != "/login" {
		t.Fatalf("expected the login page, got %d at %s", page.Status, page.URL)
	}
	if !strings.Contains(page.Body, `value="ann&#34;&lt;b&gt;"`) {
		t.Errorf("login page does not fill in the escaped hint: %.600s", page.Body)
	}

	params.Set("login_hint", strings.Repeat("x", 300))
	page = b.Get(authURL(env, params))
	if strings.Contains(page.Body, strings.Repeat("x", 300)) {
		t.Error("login page filled in a hint longer than any username")
	}
}

func TestSelectAccountShowsLoginForm(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "ugo")
	_, otherPassword := env.createUser(t, "vera")
	b := newBrowser(t)
	signedInApp(t, env, b, clientID, secret, "ugo", password)

	// Signed in as ugo, the person picks vera's account on the login form.
	params := validAuthParams(clientID)
	params.Set("prompt", "select_account")
	page := b.Get(authURL(env, params))
	if page.URL.Path != "/login" {
		t.Fatalf("prompt=select_account with a session: %d at %s, want the login form", page.Status, page.URL)
	}
	query := testsupport.CallbackParams(t, b.Login(env.issuer, page, "vera", otherPassword))
	if query.Get("code") == "" {
		t.Fatalf("sign-in as another account gave no code: %v", query)
	}
}
