package provider

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/storage"
)

// TestUnknownKidTriggersReload checks that a token signed with a key rotated
// by another process verifies without waiting for the periodic reload, and
// that reloads are rate limited.
func TestUnknownKidTriggersReload(t *testing.T) {
	ctx := context.Background()
	store, secret := newKeyStore(t)

	verifier, err := NewKeySet(store, secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.EnsureActive(ctx, time.Hour, AlgES256); err != nil {
		t.Fatal(err)
	}
	other, err := NewKeySet(store, secret)
	if err != nil {
		t.Fatal(err)
	}
	other.SetActivationDelay(0)
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Rotate(ctx, AlgES256, time.Hour); err != nil {
		t.Fatal(err)
	}
	token, _, err := (&tokenSigner{keys: other, algorithm: AlgES256}).Generate(ctx,
		jwt.MapClaims{"sub": "s", "exp": time.Now().Add(time.Minute).Unix()}, &jwt.Headers{})
	if err != nil {
		t.Fatal(err)
	}

	signer := &tokenSigner{keys: verifier, algorithm: AlgES256}
	if _, err := signer.Validate(ctx, token); err == nil {
		t.Fatal("verified a token of an unknown key within the reload interval; the rate limit does not work")
	}

	verifier.reloadInterval = 0
	if _, err := signer.Validate(ctx, token); err != nil {
		t.Errorf("token signed by a key rotated elsewhere does not verify after reload: %v", err)
	}
}

// TestStaleKeySetReloads checks that the JWKS endpoint's reload publishes a
// key rotated by another process once the loaded set is older than the
// limit, and not before.
func TestStaleKeySetReloads(t *testing.T) {
	ctx := context.Background()
	store, secret := newKeyStore(t)

	published, err := NewKeySet(store, secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	published.now = func() time.Time { return now }
	if _, err := published.EnsureActive(ctx, time.Hour, AlgRS256); err != nil {
		t.Fatal(err)
	}
	other, err := NewKeySet(store, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	kid, err := other.Rotate(ctx, AlgRS256, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	if err := published.ReloadIfOlder(ctx, JWKSMaxAge); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(published.JWKS()), kid) {
		t.Fatal("the key set reloaded before it was stale")
	}
	now = now.Add(JWKSMaxAge + time.Second)
	if err := published.ReloadIfOlder(ctx, JWKSMaxAge); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(published.JWKS()), kid) {
		t.Errorf("the JWKS does not publish the key rotated elsewhere after a stale reload")
	}
}

// newKeyStore returns a migrated SQLite store in a temporary folder and a
// random system secret.
func newKeyStore(t *testing.T) (*storage.Store, []byte) {
	t.Helper()
	db, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return storage.NewStore(db), secret
}
