package storage_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

func TestDeleteExpiredSQLite(t *testing.T) {
	testDeleteExpired(t, storagetest.NewDatabaseOn(t, storagetest.SQLite))
}

func TestDeleteExpiredPostgres(t *testing.T) {
	skipWithoutServices(t)
	testDeleteExpired(t, storagetest.NewDatabaseOn(t, storagetest.Postgres))
}

// testDeleteExpired stores access tokens and refresh tokens on both sides
// of their expiry and checks that cleanup, in batches smaller than the
// number of expired rows, removes exactly the expired ones.
func testDeleteExpired(t *testing.T, db *storage.Database) {
	ctx := t.Context()
	store := storage.NewStore(db)
	client := createClient(t, store, "client-janitor")
	now := time.Now().UTC()

	const expiredCount, liveCount = 7, 3
	storeTokens := func(signature string, expiresAt time.Time) {
		request := newTestRequest(client, "request-"+signature)
		session := request.Session.(*openid.DefaultSession)
		session.ExpiresAt[fosite.AccessToken] = expiresAt
		session.ExpiresAt[fosite.RefreshToken] = expiresAt
		if err := store.CreateAccessTokenSession(ctx, signature, request); err != nil {
			t.Fatal(err)
		}
		if err := store.CreateRefreshTokenSession(ctx, signature, signature, request); err != nil {
			t.Fatal(err)
		}
	}
	for i := range expiredCount {
		storeTokens(fmt.Sprintf("expired-%d", i), now.Add(-time.Minute))
	}
	for i := range liveCount {
		storeTokens(fmt.Sprintf("live-%d", i), now.Add(time.Hour))
	}

	deleted, err := store.DeleteExpired(ctx, now, 2)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if deleted["oauth2_access_tokens"] != expiredCount || deleted["oauth2_refresh_tokens"] != expiredCount {
		t.Errorf("deleted = %v, want %d access and %d refresh tokens", deleted, expiredCount, expiredCount)
	}

	for i := range expiredCount {
		signature := fmt.Sprintf("expired-%d", i)
		if _, err := store.GetAccessTokenSession(ctx, signature, nil); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("expired access token %s: %v, want not found", signature, err)
		}
	}
	for i := range liveCount {
		signature := fmt.Sprintf("live-%d", i)
		if _, err := store.GetAccessTokenSession(ctx, signature, nil); err != nil {
			t.Errorf("live access token %s was deleted: %v", signature, err)
		}
		if _, err := store.GetRefreshTokenSession(ctx, signature, nil); err != nil {
			t.Errorf("live refresh token %s was deleted: %v", signature, err)
		}
	}
}
