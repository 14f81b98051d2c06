package provider

import (
	"context"
	"crypto/rand"
	"path/filepath"
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
	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := storage.NewStore(db)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

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
