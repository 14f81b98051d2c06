package provider_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testsupport"
)

func TestReplicasShareTokensAndKeys(t *testing.T) {
	backend := newSharedBackend(t)
	first := newReplica(t, backend, "")
	second := newReplica(t, backend, first.issuer)
	secondURL := second.server.URL

	clientID, secret := first.createClient(t, clientSpec{firstParty: true})
	_, password := first.createUser(t, "mallory")

	if firstKeys, secondKeys := fetchBody(t, first.issuer+"/.well-known/jwks.json"), fetchBody(t, secondURL+"/.well-known/jwks.json"); firstKeys != secondKeys {
		t.Errorf("replicas publish different keys:\n%s\n%s", firstKeys, secondKeys)
	}

	rp := newRelyingParty(t, first, clientID, secret)
	code, verifier := codeFor(t, first, rp, "mallory", password)
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange at the first replica: %v", err)
	}

	status, _, info := postForm(t, secondURL+"/oauth2/introspect", clientID, secret, url.Values{"token": {token.AccessToken}})
	if status != http.StatusOK || info["active"] != true {
		t.Fatalf("second replica does not see the first one's token: %d %v", status, info)
	}

	status, _, refreshed := postForm(t, secondURL+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {token.RefreshToken},
	})
	if status != http.StatusOK {
		t.Fatalf("refresh at the second replica: %d %v", status, refreshed)
	}
	newAccess := refreshed["access_token"].(string)

	status, _, body := postForm(t, secondURL+"/oauth2/revoke", clientID, secret, url.Values{"token": {newAccess}})
	if status != http.StatusOK {
		t.Fatalf("revoke at the second replica: %d %v", status, body)
	}
	if introspect(t, first, clientID, secret, newAccess) {
		t.Error("first replica still accepts a token revoked through the second")
	}
}

func TestLoginSessionSharedByReplicas(t *testing.T) {
	backend := newSharedBackend(t)
	first := newReplica(t, backend, "")
	second := newReplica(t, backend, first.issuer)
	clientID, _ := first.createClient(t, clientSpec{firstParty: true})
	_, password := first.createUser(t, "niaj")

	b := newBrowser(t)
	testsupport.CallbackParams(t, b.Login(first.issuer, b.Get(authURL(first, validAuthParams(clientID))), "niaj", password))

	// The browser carries the first replica's session cookie to the second,
	// as it would behind a load balancer serving both under one host.
	firstURL, _ := url.Parse(first.issuer)
	secondURL, _ := url.Parse(second.server.URL)
	b.Client.Jar.SetCookies(secondURL, b.Client.Jar.Cookies(firstURL))

	params := validAuthParams(clientID)
	params.Set("prompt", "none")
	got := b.Get(second.server.URL + "/oauth2/auth?" + params.Encode())
	if query := testsupport.CallbackParams(t, got); query.Get("code") == "" {
		t.Errorf("second replica does not know the login session: %v", query)
	}
}

func TestConcurrentRefreshHasOneWinner(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "oscar")
	rp := newRelyingParty(t, env, clientID, secret)
	code, verifier := codeFor(t, env, rp, "oscar", password)
	token, err := rp.config.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}

	const attempts = 20
	type result struct {
		status int
		body   map[string]any
	}
	results := make([]result, attempts)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
				"grant_type": {"refresh_token"}, "refresh_token": {token.RefreshToken},
			})
			results[i] = result{status, body}
		}()
	}
	close(start)
	wg.Wait()

	var winners []map[string]any
	for _, r := range results {
		switch {
		case r.status == http.StatusOK:
			winners = append(winners, r.body)
		case r.status != http.StatusBadRequest || r.body["error"] != "invalid_grant":
			t.Errorf("losing refresh answered %d %v, want 400 invalid_grant", r.status, r.body)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d of %d concurrent refreshes succeeded, want exactly 1", len(winners), attempts)
	}

	// The losers presented a spent refresh token: reuse, so the grant is
	// revoked, the winner's new tokens included.
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {winners[0]["refresh_token"].(string)},
	})
	expectOAuthError(t, status, body, http.StatusBadRequest, "invalid_grant")
	if introspect(t, env, clientID, secret, winners[0]["access_token"].(string)) {
		t.Error("the winner's access token survived the reuse")
	}
}

func fetchBody(t *testing.T, rawURL string) string {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
