package provider_test

import (
	"strings"
	"testing"
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
