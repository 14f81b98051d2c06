package provider_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/latchkey/latchkey/internal/testsupport"
)

func TestSignInAgainRenewsSession(t *testing.T) {
	backend := newSharedBackend(t)
	env := newReplica(t, backend, "")
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	user, password := env.createUser(t, "rhea")
	b := newBrowser(t)
	token := signedInApp(t, env, b, clientID, secret, "rhea", password)
	_, claims := decodeJWT(t, token.AccessToken)
	sid, _ := claims["sid"].(string)

	// prompt=login requires the password again in the same browser.
	params := validAuthParams(clientID)
	params.Set("prompt", "login")
	loginPage := b.Get(authURL(env, params))
	if query := testsupport.CallbackParams(t, b.Login(env.issuer, loginPage, "rhea", password)); query.Get("code") == "" {
		t.Fatalf("sign-in with prompt=login gave no code: %v", query)
	}

	sessions, err := backend.sessions.ListByUser(context.Background(), user.ID)
	if err != nil {
		t.Fatalf("ListByUser: %v", err)
	}
	if len(sessions) != 1 {
		t.Fatalf("user has %d sessions after signing in again, want 1", len(sessions))
	}
	if sessions[0].ID != sid {
		t.Errorf("session after signing in again = %s, want the renewed %s", sessions[0].ID, sid)
	}
	if authTime, _ := claims["auth_time"].(float64); sessions[0].AuthTime.Unix() < int64(authTime) {
		t.Errorf("auth_time went back from %v to %v", int64(authTime), sessions[0].AuthTime.Unix())
	}
}

func TestRefreshOutlivesSessionThatEndedOnItsOwn(t *testing.T) {
	backend := newSharedBackend(t)
	env := newReplica(t, backend, "")
	clientID, secret := env.createClient(t, clientSpec{firstParty: true})
	_, password := env.createUser(t, "iris")
	token := signedInApp(t, env, newBrowser(t), clientID, secret, "iris", password)
	_, claims := decodeJWT(t, token.AccessToken)
	sid, _ := claims["sid"].(string)
	ctx := context.Background()
	before, err := backend.sessions.Get(ctx, sid)
	if err != nil {
		t.Fatalf("Get session: %v", err)
	}

	refresh := func(refreshToken string) map[string]any {
		t.Helper()
		status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {refreshToken},
		})
		if status != http.StatusOK {
			t.Fatalf("refresh: status %d, want 200: %v", status, body)
		}
		return body
	}

	// A refresh is activity: the session's last use moves.
	body := refresh(token.RefreshToken)
	after, err := backend.sessions.Get(ctx, sid)
	if err != nil {
		t.Fatalf("Get session after refresh: %v", err)
	}
	if !after.LastSeenAt.After(before.LastSeenAt) {
		t.Errorf("LastSeenAt = %v after a refresh, want later than %v", after.LastSeenAt, before.LastSeenAt)
	}

	// The session ends on its own, as at its idle timeout: no logout, so
	// the grant stays, but its new tokens no longer name the session.
	if err := backend.sessions.Delete(ctx, sid); err != nil {
		t.Fatalf("Delete session: %v", err)
	}
	body = refresh(body["refresh_token"].(string))
	_, access := decodeJWT(t, body["access_token"].(string))
	if _, named := access["sid"]; named {
		t.Errorf("access token of an offline refresh names sid %v", access["sid"])
	}
	_, idToken := decodeJWT(t, body["id_token"].(string))
	if _, named := idToken["sid"]; named {
		t.Errorf("ID token of an offline refresh names sid %v", idToken["sid"])
	}
	if access["sub"] != claims["sub"] {
		t.Errorf("offline access token sub = %v, want %v", access["sub"], claims["sub"])
	}
}
