package provider_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/latchkey/latchkey/provider"
)

// clientCredentialsToken returns a fresh access token for a client.
func clientCredentialsToken(t *testing.T, env *testEnv, clientID, secret string) string {
	t.Helper()
	status, _, body := postForm(t, env.issuer+"/oauth2/token", clientID, secret, url.Values{"grant_type": {"client_credentials"}})
	if status != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", status, body)
	}
	return body["access_token"].(string)
}

// publishedKIDs returns the key ids in the JWKS document.
func publishedKIDs(t *testing.T, env *testEnv) map[string]bool {
	t.Helper()
	resp, err := http.Get(env.issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for _, key := range set.Keys {
		if key.D != "" {
			t.Errorf("JWKS publishes private key material for %s", key.KID)
		}
		kids[key.KID] = true
	}
	return kids
}

func TestKeyRotationKeepsOldTokensValid(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})
	ctx := context.Background()

	oldToken := clientCredentialsToken(t, env, clientID, secret)
	oldHeader, _ := decodeJWT(t, oldToken)

	newKID, err := env.keys.Rotate(ctx, provider.AlgES256, provider.DefaultAccessTokenLifetime)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if newKID == oldHeader["kid"] {
		t.Fatal("rotation kept the same key id")
	}

	newToken := clientCredentialsToken(t, env, clientID, secret)
	newHeader, _ := decodeJWT(t, newToken)
	if newHeader["kid"] != newKID {
		t.Errorf("new token kid = %v, want the new key %s", newHeader["kid"], newKID)
	}

	kids := publishedKIDs(t, env)
	if !kids[oldHeader["kid"].(string)] || !kids[newKID] {
		t.Errorf("JWKS kids = %v, want both the old and the new key", kids)
	}
	if len(kids) != 3 {
		t.Errorf("JWKS has %d keys, want 3 (RS256, old and new ES256)", len(kids))
	}

	if !introspect(t, env, clientID, secret, oldToken) {
		t.Error("token signed by the previous key is no longer active")
	}
	verifyWithJWKS(t, env, oldToken, "ES256")
}

func TestRetiredKeyLeavesJWKS(t *testing.T) {
	env := newTestEnv(t)
	clientID, secret := env.createClient(t, clientSpec{})
	ctx := context.Background()

	oldToken := clientCredentialsToken(t, env, clientID, secret)
	oldHeader, _ := decodeJWT(t, oldToken)
	if _, err := env.keys.Rotate(ctx, provider.AlgES256, 0); err != nil {
		t.Fatalf("rotate: %v", err)
	}

	if publishedKIDs(t, env)[oldHeader["kid"].(string)] {
		t.Error("a key retired with no overlap is still published")
	}
	if introspect(t, env, clientID, secret, oldToken) {
		t.Error("token signed by a withdrawn key is still active")
	}
}

func TestKeysRotatedElsewhereArePickedUp(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()

	other, err := provider.NewKeySet(env.store, env.secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	kid, err := other.Rotate(ctx, provider.AlgRS256, provider.DefaultIDTokenLifetime)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if !publishedKIDs(t, env)[kid] {
		t.Errorf("key %s rotated by another key set is not published after reload", kid)
	}
}

func TestKeysNeedTheirSystemSecret(t *testing.T) {
	env := newTestEnv(t)
	wrongSecret := make([]byte, 32)
	keys, err := provider.NewKeySet(env.store, wrongSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Load(context.Background()); err == nil {
		t.Error("signing keys decrypted with a different system secret")
	}
}

func TestRotatedKeyIsPublishedBeforeItSigns(t *testing.T) {
	env := newTestEnv(t)
	env.keys.SetActivationDelay(time.Hour)
	clientID, secret := env.createClient(t, clientSpec{})
	ctx := context.Background()

	oldHeader, _ := decodeJWT(t, clientCredentialsToken(t, env, clientID, secret))
	newKID, err := env.keys.Rotate(ctx, provider.AlgES256, provider.DefaultAccessTokenLifetime)
	if err != nil {
		t.Fatal(err)
	}
	if !publishedKIDs(t, env)[newKID] {
		t.Error("the new key is not published right after rotation")
	}
	header, _ := decodeJWT(t, clientCredentialsToken(t, env, clientID, secret))
	if header["kid"] != oldHeader["kid"] {
		t.Errorf("token kid = %v during the activation delay, want the previous key %v", header["kid"], oldHeader["kid"])
	}

	env.keys.SetActivationDelay(0)
	header, _ = decodeJWT(t, clientCredentialsToken(t, env, clientID, secret))
	if header["kid"] != newKID {
		t.Errorf("token kid = %v after the activation delay, want the new key %s", header["kid"], newKID)
	}
}
